//! The end of a foreground session (`nfv run`, `nfv demo`, `nfv bench`, `nfv capture`):
//! the signals that stop it, and the summary it prints when it stops.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::run::{self, Running};

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
        eprintln!("nfv: {e}");
        ok = false;
    }
    match stopped {
        Ok(counters) => print!("{}{gateways}", run::summary(&plan, &counters)),
        Err(e) => {
            eprintln!("nfv: while stopping: {e}");
            ok = false;
        }
    }
    println!("nfv: stopped; namespaces and devices removed");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
