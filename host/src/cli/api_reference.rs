//! `llama-stack-operator api-reference`: prints [`crate::api::reference`] (the Markdown of
//! `docs/api-reference.md`).

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match crate::api::reference::markdown() {
        Ok(md) => {
            print!("{md}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
