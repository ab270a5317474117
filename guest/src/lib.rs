//! The LlamaStack config engine: a `LlamaStackDistribution` spec in, a config.yaml that the
//! real llama-stack server accepts out, plus the secret env vars the Deployment needs.
//!
//! Pure: no files, network, environment, clock or randomness. Everything arrives in the call,
//! so the same code runs natively, as a WASI component in the operator and in a browser.

// Lets the component glue name this crate as vendor crates do.
extern crate self as llama_stack_config;

pub mod catalog;
#[cfg(target_arch = "wasm32")]
pub mod component;
pub mod convert;
pub mod error;
mod expand;
#[cfg(feature = "one-shot-alloc")]
pub mod one_shot_alloc;
mod render;
pub mod request;
pub mod resource;
pub mod spec;
mod yaml;

pub use error::{FieldError, Reason};
pub use request::{
    BaseConfigInput, BaseSource, ConfigSource, DerivedSecret, ExternalProviderMetadata,
    GenerateRequest, Generated, ResolvedDistribution, SecretEnv,
};

use serde::Serialize;

pub use expand::Rule;

/// Generates config.yaml for one spec with the built-in distributions; on failure, every
/// field error found.
pub fn generate(req: &GenerateRequest) -> Result<Generated, Vec<FieldError>> {
    expand::generate(catalog::builtin(), &[], req)
}

/// [`generate`] with another registry and extra rules: what a vendor plugin runs.
pub fn generate_with(
    registry: &'static catalog::Registry,
    rules: &[Rule],
    req: &GenerateRequest,
) -> Result<Generated, Vec<FieldError>> {
    expand::generate(registry, rules, req)
}

/// Checks a spec without secrets or cluster lookups (what admission can run). A direct image
/// with no base config, and an external provider with no metadata, are not errors here: the
/// registry is read at reconcile time (FR-027f, D16).
pub fn validate(req: &GenerateRequest) -> Vec<FieldError> {
    validate_with(catalog::builtin(), &[], req)
}

/// [`validate`] with another registry and extra rules.
pub fn validate_with(
    registry: &'static catalog::Registry,
    rules: &[Rule],
    req: &GenerateRequest,
) -> Vec<FieldError> {
    match generate_with(registry, rules, req) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .filter(|e| {
                !matches!(
                    e.reason,
                    Reason::BaseConfigRequired | Reason::ExternalProviderMetadataMissing
                )
            })
            .collect(),
    }
}

/// What this engine serves.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub distributions: Vec<catalog::DistributionEntry>,
}

pub fn info() -> EngineInfo {
    EngineInfo {
        name: "llama-stack-config",
        version: env!("CARGO_PKG_VERSION"),
        distributions: catalog::distributions()
            .iter()
            .map(|d| d.entry.clone())
            .collect(),
    }
}

/// sha256 hex, as used for content hashes.
pub fn content_hash(bytes: &[u8]) -> String {
    render::sha256_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validate_tolerates_a_direct_image_but_reports_real_errors() {
        let image = GenerateRequest {
            spec: json!({"distribution": {"image": "quay.io/x/y:1"}}),
            ..Default::default()
        };
        assert!(matches!(generate(&image), Err(e) if e[0].reason == Reason::BaseConfigRequired));
        assert!(
            validate(&image).is_empty(),
            "labels are read at reconcile time, not admission"
        );
        let bad = GenerateRequest {
            spec: json!({"distribution": {"name": "nope"}}),
            ..Default::default()
        };
        let errors = validate(&bad);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            format!("spec.distribution.name: {}", errors[0].message)
        );
        assert_eq!(errors[0].reason.to_string(), "UnknownDistribution");
    }

    #[test]
    fn validate_tolerates_external_providers_whose_metadata_is_read_later() {
        let req = GenerateRequest {
            spec: json!({"distribution": {"name": "starter"},
                "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"}]}}),
            ..Default::default()
        };
        assert!(
            matches!(generate(&req), Err(e) if e[0].reason == Reason::ExternalProviderMetadataMissing)
        );
        assert!(validate(&req).is_empty(), "{:?}", validate(&req));
        let dup = GenerateRequest {
            spec: json!({"distribution": {"name": "starter"},
                "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"},
                                                   {"providerId": "acme", "image": "quay.io/acme/q:1"}]}}),
            ..Default::default()
        };
        assert_eq!(
            validate(&dup)[0].reason,
            Reason::Duplicate,
            "still caught at admission"
        );
        // A model may name the external provider before its metadata is known.
        let model = GenerateRequest {
            spec: json!({"distribution": {"name": "starter"},
                "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"}]},
                "resources": {"models": [{"name": "m", "provider": "acme"}]}}),
            ..Default::default()
        };
        assert!(validate(&model).is_empty(), "{:?}", validate(&model));
    }

    #[test]
    fn a_package_name_ending_in_provider_is_the_package_llama_stack_imports_from() {
        let req = |package: &str| GenerateRequest {
            spec: json!({"distribution": {"name": "starter"},
                "externalProviders": {"inference": [{"providerId": "acme", "image": "quay.io/acme/p:1"}]}}),
            external_provider_metadata: vec![ExternalProviderMetadata {
                provider_id: "acme".into(),
                image: "quay.io/acme/p:1".into(),
                provider_type: "remote::acme".into(),
                package_name: package.into(),
                api: "inference".into(),
            }],
            ..Default::default()
        };
        let g = generate(&req("acme_infer.provider")).expect("valid");
        assert!(
            g.config_yaml.contains("module: acme_infer\n"),
            "{}",
            g.config_yaml
        );
        assert!(
            g.warnings.iter().any(|w| w.contains("<module>.provider")),
            "{:?}",
            g.warnings
        );
        let g = generate(&req("acme_infer")).expect("valid");
        assert!(g.config_yaml.contains("module: acme_infer\n") && g.warnings.is_empty());
    }

    #[test]
    fn an_incomplete_override_config_is_blamed_on_the_configmap() {
        let starter = catalog::distribution("starter")
            .expect("starter")
            .base_config;
        let mut doc: serde_yaml::Value = serde_yaml::from_str(starter).expect("yaml");
        doc["providers"]["inference"] = serde_yaml::Value::Sequence(Vec::new());
        let req = GenerateRequest {
            spec: json!({"distribution": {"name": "starter"}, "overrideConfig": {"configMapName": "cm"}}),
            base_config: Some(BaseConfigInput {
                yaml: serde_yaml::to_string(&doc).expect("yaml"),
                source: BaseSource::OverrideConfig,
            }),
            ..Default::default()
        };
        let g = generate(&req).expect("a warning, not an error");
        let w = g
            .warnings
            .iter()
            .find(|w| w.contains("incomplete"))
            .unwrap_or_else(|| panic!("{:?}", g.warnings));
        assert!(
            w.contains("overrideConfig config.yaml") && !w.contains("spec.disabled"),
            "{w}"
        );
    }

    #[test]
    fn info_lists_every_embedded_distribution() {
        let i = info();
        assert_eq!(i.name, "llama-stack-config");
        assert_eq!(i.distributions.len(), catalog::distributions().len());
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
