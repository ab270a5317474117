//! `llama-stack-operator generate -f CR.yaml [-o yaml|json]`.

use super::{Format, input};
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
}

pub fn run(args: &Args) -> ExitCode {
    match request(args) {
        Ok(req) => emit(args.output, &req),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn request(args: &Args) -> Result<GenerateRequest, input::InputError> {
    let text = input::read(&args.file)?;
    let doc: serde_json::Value = input::parse(&args.file, &text)?;
    let mut req = input::resource(&args.file, doc)?;
    req.base_config = match &args.base_config {
        None => None,
        Some(p) => {
            let source = if req.spec.get("overrideConfig").is_some() {
                BaseSource::OverrideConfig
            } else {
                BaseSource::OciLabel
            };
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

fn emit(format: Format, req: &GenerateRequest) -> ExitCode {
    match llama_stack_config::generate(req) {
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
