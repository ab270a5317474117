//! `llama-stack-operator validate -f FILE`: every check that needs no cluster (the engine's,
//! through the plugin that serves the distribution); v1alpha1 objects are converted first, as
//! the API server would. Secrets, ConfigMaps and the CRD's own schema are checked at admission.

use super::input;
use crate::plugin::{ConvertRefusal, Host, Limits};
use llama_stack_config::{BaseConfigInput, BaseSource, FieldError, Reason};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The LlamaStackDistribution (YAML or JSON, v1alpha1 or v1alpha2; `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// The overrideConfig ConfigMap's config.yaml, to check it too (otherwise it is left to
    /// the cluster).
    #[arg(long = "base-config")]
    pub base_config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum ValidateError {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error("{0}")]
    Refused(String),
}

pub fn run(args: &Args) -> ExitCode {
    match check(args) {
        Ok(errors) if errors.is_empty() => {
            println!("{}: valid", args.file.display());
            ExitCode::SUCCESS
        }
        Ok(errors) => {
            for e in errors {
                eprintln!("{}: {}", e.path, e.message);
            }
            ExitCode::from(1)
        }
        Err(ValidateError::Plugin(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(args: &Args) -> Result<Vec<FieldError>, ValidateError> {
    let text = input::read(&args.file)?;
    let mut doc = input::parse_resource(&args.file, &text)?;
    let host = Host::new(Limits::default())?;
    let builtin = host.load_default()?;
    if doc["apiVersion"] == "llamastack.io/v1alpha1" {
        doc = match builtin.convert(&host, &doc, "v1alpha2")? {
            Ok(d) => d,
            Err(ConvertRefusal::Invalid(errors)) => return Ok(errors),
            Err(ConvertRefusal::Unsupported(why)) => return Err(ValidateError::Refused(why)),
        };
    }
    let mut req = input::resource(&args.file, doc)?;
    let offline_override = req.spec.get("overrideConfig").is_some() && args.base_config.is_none();
    if let Some(p) = &args.base_config {
        req.base_config = Some(BaseConfigInput {
            yaml: input::read(p)?,
            source: BaseSource::for_spec(&req.spec),
        });
    }
    let errors = builtin.validate(&host, &req)?;
    // Without the ConfigMap's content the override cannot be checked here; the cluster does.
    Ok(errors
        .into_iter()
        .filter(|e| {
            !(offline_override
                && e.reason == Reason::Required
                && e.path == "spec.overrideConfig.configMapName")
        })
        .collect())
}
