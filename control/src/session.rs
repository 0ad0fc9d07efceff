//! The end of a foreground session (`nfv run`, `nfv demo`, `nfv bench`, `nfv capture`):
//! the signals that stop it, and the summary it prints when it stops.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::run::{self, Running};

/// `print!` that never panics: with stdout closed (`nfv run | head -2`) the text is lost,
/// not the dataplane, nor the cleanup of its namespaces and devices.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that never panics (see [`out!`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see [`out!`]).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub(crate) use {errln, out, outln};

/// Install handlers so that SIGINT and SIGTERM set the returned flag instead of killing us.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            tracing::warn!("cannot handle signal {sig}: {e}");
        }
    }
    stop
}

/// Stop `running`, print its counters, and turn the outcome into an exit code.
pub fn finish(running: &Running, waited: Result<(), run::RunError>) -> ExitCode {
    let plan = running.plan();
    let gateways = running.functions_summary();
    let stopped = running.stop();
    let mut ok = true;
    if let Err(e) = waited {
        errln!("nfv: {e}");
        ok = false;
    }
    match stopped {
        Ok(counters) => out!("{}{gateways}", run::summary(&plan, &counters)),
        Err(e) => {
            errln!("nfv: while stopping: {e}");
            ok = false;
        }
    }
    outln!("nfv: stopped; namespaces and devices removed");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
