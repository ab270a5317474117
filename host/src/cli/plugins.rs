//! `llama-stack-operator plugins [--config FILE]`: load every plugin as the operator would
//! and show what each serves; refused vendor plugins are listed with the reason.

use super::{Format, input};
use crate::plugin::{Host, Limits, PluginRegistry, PluginSource};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plugin configuration: YAML `plugins: [{path: FILE.wasm, sha256: HEX}]`.
    #[arg(long = "config")]
    pub config: Option<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
}

#[derive(Debug, serde::Deserialize)]
struct PluginConfig {
    #[serde(default)]
    plugins: Vec<PluginSource>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    name: &'a str,
    sha256: &'a str,
    compile_ms: u128,
    info: Option<&'a crate::plugin::PluginInfo>,
}

pub fn run(args: &Args) -> ExitCode {
    let sources = match &args.config {
        None => Vec::new(),
        Some(p) => match input::read(p).and_then(|t| input::parse::<PluginConfig>(p, &t)) {
            Ok(c) => c.plugins,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let loaded =
        Host::new(Limits::default()).and_then(|host| PluginRegistry::load(&host, &sources));
    let (registry, failures) = match loaded {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    for f in &failures {
        eprintln!("refused: {}: {}", f.path.display(), f.error);
    }
    let rows: Vec<Row> = registry
        .plugins()
        .map(|p| Row {
            name: p.name(),
            sha256: p.digest(),
            compile_ms: p.compile_time().as_millis(),
            info: p.info(),
        })
        .collect();
    match args.output {
        Format::Json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        Format::Yaml => {
            println!(
                "{:<14} {:<10} {:<14} {:<40} IMAGE-REPOSITORIES",
                "PLUGIN", "VERSION", "SHA256", "DISTRIBUTIONS"
            );
            for r in &rows {
                let (version, dists, repos) = match r.info {
                    Some(i) => (
                        i.version.as_str(),
                        i.distributions
                            .iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        i.image_repositories.join(","),
                    ),
                    None => ("?", String::new(), String::new()),
                };
                println!(
                    "{:<14} {:<10} {:<14} {:<40} {}",
                    r.name,
                    version,
                    &r.sha256[..12.min(r.sha256.len())],
                    dists,
                    repos
                );
            }
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
