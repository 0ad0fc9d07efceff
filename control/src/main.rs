//! The `nfv` binary; everything lives in `nfv_control`.

fn main() -> std::process::ExitCode {
    nfv_control::cli::main()
}
