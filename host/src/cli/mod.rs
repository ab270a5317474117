//! Command line: each subcommand is a thin shell over the engine.

mod api_reference;
mod convert;
mod crds;
mod distributions;
mod generate;
mod input;
mod playground;
mod plugins;
mod run;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "llama-stack-operator",
    version,
    about = "Kubernetes operator for LlamaStack"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the config.yaml for a LlamaStackDistribution, offline.
    Generate(generate::Args),
    /// List the distributions compiled into the operator.
    Distributions {
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: Format,
    },
    /// Load the built-in and the configured vendor plugins and list what each serves.
    Plugins(plugins::Args),
    /// Print the LlamaStackDistribution CRD (both versions) as YAML.
    Crds,
    /// Print the API reference (Markdown) generated from the CRD schema (docs/api-reference.md).
    ApiReference,
    /// Convert a LlamaStackDistribution between v1alpha1 and v1alpha2, offline.
    Convert(convert::Args),
    /// Check a LlamaStackDistribution offline (everything that needs no cluster).
    Validate(validate::Args),
    /// Run the operator: controller, webhooks, metrics and probes.
    Run(Box<crate::settings::RunArgs>),
    /// Serve the browser playground (its static build output) on loopback.
    Playground(playground::Args),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Generate(args) => generate::run(&args),
        Command::Distributions { output } => distributions::run(output),
        Command::Plugins(args) => plugins::run(&args),
        Command::Crds => crds::run(),
        Command::ApiReference => api_reference::run(),
        Command::Convert(args) => convert::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Playground(args) => playground::run(&args),
    }
}
