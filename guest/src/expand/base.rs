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
        Ok(Value::Mapping(m)) if m.contains_key("providers") => match unreadable(&m, "") {
            // Issue 19 (found by fuzzing): a tag or a non-string key would reach config.yaml,
            // and the server's loader refuses tags and cannot use such keys.
            Some(problem) => {
                d.error(
                    path,
                    Reason::InvalidBaseConfig,
                    format!("the base config.yaml {problem}"),
                );
                None
            }
            None => Some(m),
        },
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

/// What in a document config.yaml cannot carry: the first YAML tag or non-string key, and where.
fn unreadable(m: &Mapping, at: &str) -> Option<String> {
    m.iter().find_map(|(k, v)| {
        let Value::String(key) = k else {
            let shown = serde_yaml::to_string(k).unwrap_or_default();
            let shown: String = shown.trim().chars().take(40).collect();
            return Some(format!(
                "has a key that is not a string (`{shown}`) under `{}`: llama-stack's config keys are strings",
                if at.is_empty() { "the top level" } else { at }
            ));
        };
        let here = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        unreadable_value(v, &here)
    })
}

fn unreadable_value(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(format!(
            "has a YAML tag `{}` at `{at}`: llama-stack reads config.yaml with a safe loader that refuses tags",
            t.tag
        )),
        Value::Mapping(m) => unreadable(m, at),
        Value::Sequence(s) => s
            .iter()
            .enumerate()
            .find_map(|(i, v)| unreadable_value(v, &format!("{at}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod unreadable_tests {
    use super::*;

    #[test]
    fn tags_and_non_string_keys_in_a_base_config_are_refused_with_their_place() {
        // Issue 19: found by fuzz.rs's engine_base_config.
        let mut d = Diagnostics::default();
        let text = "version: 2\napis:\n- inference\n- !foo safety\nproviders: {}\n";
        assert!(parse(text, "spec.overrideConfig", &mut d).is_none());
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        assert_eq!(d.errors[0].path, "spec.overrideConfig");
        assert!(
            d.errors[0].message.contains("`!foo` at `apis[1]`"),
            "{}",
            d.errors[0].message
        );
        let mut d = Diagnostics::default();
        let text = "providers:\n  inference:\n  - config: {url: !secret x}\n";
        assert!(parse(text, "p", &mut d).is_none());
        assert!(
            d.errors[0]
                .message
                .contains("at `providers.inference[0].config.url`"),
            "{}",
            d.errors[0].message
        );
        // A mapping as a key (`? ` in YAML): PyYAML calls it unhashable.
        let mut d = Diagnostics::default();
        let text = "providers:\n  inference:\n  - ? {a: 1}\n    : x\n";
        assert!(parse(text, "p", &mut d).is_none());
        assert!(
            d.errors[0]
                .message
                .contains("not a string (`a: 1`) under `providers.inference[0]`"),
            "{}",
            d.errors[0].message
        );
        let mut d = Diagnostics::default();
        assert!(parse("providers: {}\nx: 'no tag'\n", "p", &mut d).is_some());
        assert!(d.errors.is_empty());
    }
}
