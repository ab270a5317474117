//! Which base config generation starts from (FR-027a..c, FR-027g, D11, D15).

use crate::catalog::{self, Catalog};
use crate::error::{Diagnostics, Reason};
use crate::request::{BaseSource, ConfigSource, GenerateRequest, ResolvedDistribution};
use crate::spec::Spec;
use serde_yaml::{Mapping, Value};

/// FR-027c, byte for byte.
pub const BASE_CONFIG_REQUIRED: &str = "Direct image references require either overrideConfig.configMapName or OCI \
config labels on the image. See docs/configuration.md for details.";

/// The resolved base: the parsed config, the catalog that applies to it (if any) and where it
/// came from.
pub struct Base {
    pub doc: Mapping,
    pub catalog: Option<&'static Catalog>,
    /// The field errors about the base config point at.
    pub path: &'static str,
    pub resolved: ResolvedDistribution,
}

pub fn resolve(spec: &Spec, req: &GenerateRequest, d: &mut Diagnostics) -> Option<Base> {
    let dist = match &spec.distribution.name {
        Some(name) => match catalog::distribution(name) {
            Some(dist) => Some(dist),
            None => {
                d.error(
                    "spec.distribution.name",
                    Reason::UnknownDistribution,
                    format!(
                        "Unknown distribution \"{name}\". Available distributions: {}",
                        catalog::distribution_names().join(", ")
                    ),
                );
                return None;
            }
        },
        None => None,
    };
    let handed = req.base_config.as_ref();
    if let Some(cm) = &spec.override_config
        && !matches!(handed, Some(b) if b.source == BaseSource::OverrideConfig)
    {
        d.error(
                "spec.overrideConfig.configMapName",
                Reason::Required,
                format!(
                    "the config.yaml of ConfigMap \"{cm}\" was not supplied: the operator reads it from the ConfigMap's \
                     config.yaml key (the CLI takes it with --base-config FILE)"
                ),
            );
        return None;
    }
    let (text, source, path): (&str, ConfigSource, &'static str) = match (handed, dist) {
        (Some(b), _) => {
            let source = match b.source {
                BaseSource::OverrideConfig => ConfigSource::OverrideConfig,
                BaseSource::OciLabel => ConfigSource::OciLabel,
            };
            let path = match b.source {
                BaseSource::OverrideConfig => "spec.overrideConfig.configMapName",
                BaseSource::OciLabel if dist.is_some() => "spec.distribution.name",
                BaseSource::OciLabel => "spec.distribution.image",
            };
            (b.yaml.as_str(), source, path)
        }
        (None, Some(dist)) => (
            dist.base_config,
            ConfigSource::Embedded,
            "spec.distribution.name",
        ),
        (None, None) => {
            d.error(
                "spec.distribution.image",
                Reason::BaseConfigRequired,
                BASE_CONFIG_REQUIRED,
            );
            return None;
        }
    };
    let doc = match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Mapping(m)) if m.contains_key("providers") => m,
        Ok(_) => {
            d.error(
                path,
                Reason::InvalidBaseConfig,
                "the base config.yaml is not a llama-stack run config: it needs a top-level mapping with `providers`",
            );
            return None;
        }
        Err(e) => {
            d.error(
                path,
                Reason::InvalidBaseConfig,
                format!("the base config.yaml is not valid YAML: {e}"),
            );
            return None;
        }
    };
    let resolved = ResolvedDistribution {
        name: spec.distribution.name.clone(),
        image: spec
            .distribution
            .image
            .clone()
            .or_else(|| dist.map(|x| x.entry.image.clone())),
        llama_stack_version: dist.map(|x| x.entry.llama_stack_version.clone()),
        config_source: source,
        base_config_hash: crate::render::sha256_hex(text.as_bytes()),
    };
    Some(Base {
        doc,
        catalog: dist.map(|x| x.catalog),
        path,
        resolved,
    })
}
