//! `llama-stack-operator distributions`: the embedded names and their pinned images.

use super::Format;
use std::process::ExitCode;

pub fn run(output: Format) -> ExitCode {
    let entries: Vec<_> = llama_stack_config::catalog::distributions()
        .iter()
        .map(|d| &d.entry)
        .collect();
    match output {
        Format::Json => match serde_json::to_string_pretty(&entries) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: failed to encode distributions: {e}");
                return ExitCode::from(1);
            }
        },
        Format::Yaml => {
            let w = entries
                .iter()
                .map(|e| e.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let wi = entries
                .iter()
                .map(|e| e.image.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:<w$}  {:<wi$}  LLAMA-STACK", "NAME", "IMAGE");
            for e in entries {
                println!(
                    "{:<w$}  {:<wi$}  {}",
                    e.name, e.image, e.llama_stack_version
                );
            }
        }
    }
    ExitCode::SUCCESS
}
