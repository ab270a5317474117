//! `llama-stack-operator generate -f CR.yaml [-o yaml|json]`.

use super::{Format, input};
use crate::plugin::{Host, Limits, PluginError};
use llama_stack_config::{BaseConfigInput, BaseSource, ExternalProviderMetadata, GenerateRequest};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The LlamaStackDistribution (YAML or JSON; `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// yaml: the config.yaml; json: config, env vars, hash, counts and warnings.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: Format,
    /// A base config.yaml to use instead of the embedded one (the overrideConfig ConfigMap's
    /// content, or what an image's labels carry).
    #[arg(long = "base-config")]
    pub base_config: Option<PathBuf>,
    /// External provider metadata: a YAML/JSON list of {providerId, image, providerType,
    /// packageName, api}, as read from each provider image's lls-provider-spec.yaml.
    #[arg(long = "provider-metadata")]
    pub provider_metadata: Option<PathBuf>,
    /// A vendor plugin (.wasm component) to generate with instead of the built-in one.
    #[arg(long = "plugin", conflicts_with = "engine")]
    pub plugin: Option<PathBuf>,
    /// component: the built-in WASI component, as the operator runs it; native: the same
    /// engine compiled into this binary (for comparison and debugging).
    #[arg(long = "engine", value_enum, default_value = "component")]
    pub engine: EngineKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Component,
    Native,
}

/// Exit codes: 0 ok, 1 invalid input (field errors, unreadable files), 2 usage, 3 the plugin
/// itself failed (trap, deadline, memory cap).
const EXIT_PLUGIN: u8 = 3;

pub fn run(args: &Args) -> ExitCode {
    let req = match request(args) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match (args.engine, &args.plugin) {
        (EngineKind::Native, _) => llama_stack_config::generate(&req),
        (EngineKind::Component, plugin) => match through_component(plugin.as_deref(), &req) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_PLUGIN);
            }
        },
    };
    emit(args.output, result)
}

fn through_component(
    plugin: Option<&std::path::Path>,
    req: &GenerateRequest,
) -> Result<Result<llama_stack_config::Generated, Vec<llama_stack_config::FieldError>>, PluginError>
{
    let host = Host::new(Limits::default())?;
    let plugin = match plugin {
        None => host.load_default()?,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("vendor")
                .to_string();
            host.load(&name, &bytes)?
        }
    };
    plugin.generate(&host, req)
}

fn request(args: &Args) -> Result<GenerateRequest, input::InputError> {
    let text = input::read(&args.file)?;
    let mut doc = input::parse_resource(&args.file, &text)?;
    // v1alpha1 objects get a generated config too: converted first, as the API server does
    // (conversion is always the built-in engine's, D18).
    if doc["apiVersion"] == "llamastack.io/v1alpha1" {
        doc = llama_stack_config::convert::convert(
            &doc,
            llama_stack_config::convert::Version::V1alpha2,
        )
        .map_err(|errors| input::InputError::Shape {
            path: args.file.clone(),
            message: errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        })?;
    }
    let mut req = input::resource(&args.file, doc)?;
    req.base_config = match &args.base_config {
        None => None,
        Some(p) => {
            let source = BaseSource::for_spec(&req.spec);
            Some(BaseConfigInput {
                yaml: input::read(p)?,
                source,
            })
        }
    };
    req.external_provider_metadata = match &args.provider_metadata {
        None => Vec::new(),
        Some(p) => input::parse::<Vec<ExternalProviderMetadata>>(p, &input::read(p)?)?,
    };
    Ok(req)
}

fn emit(
    format: Format,
    result: Result<llama_stack_config::Generated, Vec<llama_stack_config::FieldError>>,
) -> ExitCode {
    match result {
        Ok(out) => {
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            let text = match format {
                Format::Yaml => out.config_yaml.clone(),
                Format::Json => match serde_json::to_string_pretty(&out) {
                    Ok(s) => s + "\n",
                    Err(e) => {
                        eprintln!("error: failed to encode the result as JSON: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            if let Err(e) = std::io::stdout().write_all(text.as_bytes()) {
                eprintln!("error: failed to write the result: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {}", e.path, e.message);
            }
            ExitCode::from(1)
        }
    }
}
