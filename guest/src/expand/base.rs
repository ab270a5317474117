//! Which base config generation starts from (FR-027a..c, FR-027g, D11, D15).

use crate::catalog::{Catalog, Distribution, Registry};
use crate::error::{Diagnostics, Reason};
use crate::request::{BaseSource, ConfigSource, GenerateRequest, ResolvedDistribution};
use crate::spec::Spec;
use serde_yaml::{Mapping, Value};
use std::borrow::Cow;

/// FR-027c, byte for byte.
pub const BASE_CONFIG_REQUIRED: &str = "Direct image references require either overrideConfig.configMapName or OCI \
config labels on the image. See docs/configuration.md for details.";

/// The resolved base: the parsed config, the catalog that applies to it (if any) and where it
/// came from.
pub struct Base {
    pub doc: Mapping,
    /// The base config as written, emitted unchanged when the CR changes nothing.
    pub text: Cow<'static, str>,
    pub catalog: Option<&'static Catalog>,
    /// The field errors about the base config point at.
    pub path: &'static str,
    pub resolved: ResolvedDistribution,
    /// The distribution whose embedded base this is. `doc` lacks the provider lists the CR
    /// replaces or disables; their base entries come from here when needed.
    pub embedded: Option<&'static Distribution>,
}

pub fn resolve(
    registry: &'static Registry,
    spec: &Spec,
    req: &GenerateRequest,
    d: &mut Diagnostics,
) -> Option<Base> {
    let dist = match &spec.distribution.name {
        Some(name) => match registry.distribution(name) {
            Some(dist) => Some(dist),
            None => {
                d.error(
                    "spec.distribution.name",
                    Reason::UnknownDistribution,
                    format!(
                        "Unknown distribution \"{name}\". Available distributions: {}",
                        registry.names().join(", ")
                    ),
                );
                return None;
            }
        },
        None => None,
    };
    let handed = req.base_config.as_ref();
    // A direct reference to a known distribution's own image, with no labels and no
    // overrideConfig, uses that distribution's embedded config.
    let dist = dist.or_else(|| match (handed, &spec.distribution.image) {
        (None, Some(image)) if spec.override_config.is_none() => {
            registry.distribution_by_image(image)
        }
        _ => None,
    });
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
    let catalog = match dist.map(|x| x.catalog()) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            d.error(
                "spec.distribution.name",
                Reason::InvalidBaseConfig,
                format!("the plugin's provider catalog cannot be read ({e}); this is a defect of the plugin"),
            );
            return None;
        }
    };
    let embedded = if handed.is_none() { dist } else { None };
    let (text, doc, hash, source, path) = match (handed, dist) {
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
            let doc = parse(&b.yaml, path, d)?;
            let hash = crate::render::sha256_hex(b.yaml.as_bytes());
            (Cow::Owned(b.yaml.clone()), doc, hash, source, path)
        }
        (None, Some(dist)) => {
            let path = if spec.distribution.name.is_some() {
                "spec.distribution.name"
            } else {
                "spec.distribution.image"
            };
            let skip = |api: &str| replaced_or_disabled(spec, api);
            let doc = match dist.base_doc_without(&skip) {
                Some(doc) => doc,
                None => parse(dist.base_config, path, d)?,
            };
            (
                Cow::Borrowed(dist.base_config),
                doc,
                dist.base_hash().to_string(),
                ConfigSource::Embedded,
                path,
            )
        }
        (None, None) => {
            d.error(
                "spec.distribution.image",
                Reason::BaseConfigRequired,
                BASE_CONFIG_REQUIRED,
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
        base_config_hash: hash,
    };
    Some(Base {
        doc,
        text,
        catalog,
        path,
        resolved,
        embedded,
    })
}

/// True when the spec replaces (D6) or disables the base's provider list of `api`: copying
/// it would be thrown away.
fn replaced_or_disabled(spec: &Spec, api: &str) -> bool {
    spec.providers.iter().any(|l| l.api.config_name() == api)
        || spec
            .disabled
            .iter()
            .any(|n| crate::spec::Api::from_field(&n.name).map(|a| a.config_name()) == Some(api))
}

/// A run config: a YAML mapping with `providers`.
pub fn parse(text: &str, path: &str, d: &mut Diagnostics) -> Option<Mapping> {
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Mapping(m)) if m.contains_key("providers") => Some(m),
        Ok(_) => {
            d.error(
                path,
                Reason::InvalidBaseConfig,
                "the base config.yaml is not a llama-stack run config: it needs a top-level mapping with `providers`",
            );
            None
        }
        Err(e) => {
            d.error(
                path,
                Reason::InvalidBaseConfig,
                format!("the base config.yaml is not valid YAML: {e}"),
            );
            None
        }
    }
}
