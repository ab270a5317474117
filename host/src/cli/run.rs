//! `llama-stack-operator run`: the operator process (controller, webhooks, probes, metrics).

use crate::settings::RunArgs;
use std::process::ExitCode;

pub fn run(args: &RunArgs) -> ExitCode {
    crate::telemetry::init_logging(args.log_format == "json");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(crate::app::run(args.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
