//! `llama-stack-operator crds`: the CRD as YAML (`deploy/crd/` holds the same bytes).

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match crate::api::crd::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
