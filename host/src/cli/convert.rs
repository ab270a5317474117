//! `llama-stack-operator convert --to v1alpha2|v1alpha1 -f FILE`: the conversion the webhook
//! performs (through the built-in component), offline.

use super::{Format, input};
use crate::plugin::{ConvertRefusal, Host, Limits};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The LlamaStackDistribution (YAML or JSON; `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Target version.
    #[arg(long = "to", value_parser = ["v1alpha1", "v1alpha2"])]
    pub to: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
}

pub fn run(args: &Args) -> ExitCode {
    let object: serde_json::Value =
        match input::read(&args.file).and_then(|text| input::parse_resource(&args.file, &text)) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    let converted = Host::new(Limits::default()).and_then(|host| {
        let plugin = host.load_default()?;
        plugin.convert(&host, &object, &args.to)
    });
    let out = match converted {
        Ok(Ok(out)) => out,
        Ok(Err(ConvertRefusal::Invalid(errors))) => {
            for e in errors {
                eprintln!("{}: {}", e.path, e.message);
            }
            return ExitCode::from(1);
        }
        Ok(Err(ConvertRefusal::Unsupported(why))) => {
            eprintln!("error: the built-in plugin does not convert: {why}");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let text = match args.output {
        Format::Yaml => serde_yaml::to_string(&out).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_string_pretty(&out)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
    };
    match text {
        Ok(t) => match std::io::stdout().write_all(t.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: failed to write the result: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("error: failed to encode the result: {e}");
            ExitCode::from(1)
        }
    }
}
