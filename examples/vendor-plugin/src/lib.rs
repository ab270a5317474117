//! ACME's config plugin: the template a distribution vendor copies (docs/plugins.md).
//!
//! It reuses the operator's engine with (1) its own distribution, `acme-enterprise`, whose
//! base config and pinned image live in `distributions/`, (2) the llama-stack 0.7.3 provider
//! catalog the image is built from, and (3) one rule the built-in plugin does not have:
//! every remote inference provider trusts the corporate CA bundle the ACME image ships.
//!
//! Build: `cargo build --release -p acme-llama-stack-plugin --target wasm32-wasip2`; pin the
//! resulting `.wasm` by sha256 in the operator configuration.

use llama_stack_config::catalog::{self, Registry};
use llama_stack_config::error::Diagnostics;
use llama_stack_config::spec::Spec;
use serde_yaml::{Mapping, Value};
use std::sync::OnceLock;

/// Where the ACME image keeps its CA bundle.
pub const ACME_CA_BUNDLE: &str = "/etc/acme/ca-bundle.pem";

/// The distributions this plugin serves.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let catalog = catalog::builtin_catalog("llama-stack-0.7.3")
            .unwrap_or(catalog::CatalogSource::Json("{}"));
        Registry::from_sources(
            include_str!("../distributions/distributions.json"),
            &[(
                "acme-enterprise",
                include_str!("../distributions/acme-enterprise/config.yaml"),
            )],
            &[("llama-stack-0.7.3", catalog)],
        )
        // Checked by this crate's tests; an empty registry serves nothing rather than panic.
        .unwrap_or_else(|_| Registry::empty())
    })
}

/// ACME rule: remote inference providers verify TLS against the corporate CA, unless the CR
/// already chose (`settings.network.tls.verify` wins, as settings always do).
pub fn trust_acme_ca(doc: &mut Mapping, _spec: &Spec, d: &mut Diagnostics) {
    let Some(Value::Sequence(list)) = doc
        .get_mut("providers")
        .and_then(|p| p.get_mut("inference"))
    else {
        return;
    };
    for entry in list.iter_mut() {
        let remote = entry
            .get("provider_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("remote::"));
        let Some(Value::Mapping(entry)) = Some(entry) else {
            continue;
        };
        if !remote {
            continue;
        }
        let config = mapping_at(entry, "config");
        let network = mapping_at(config, "network");
        let tls = mapping_at(network, "tls");
        if !tls.contains_key("verify") {
            tls.insert(
                Value::String("verify".into()),
                Value::String(ACME_CA_BUNDLE.into()),
            );
        } else {
            d.warn("acme: a provider sets network.tls.verify itself; the ACME CA bundle is not applied to it");
        }
    }
}

fn mapping_at<'a>(m: &'a mut Mapping, key: &str) -> &'a mut Mapping {
    if !matches!(m.get(key), Some(Value::Mapping(_))) {
        m.insert(Value::String(key.into()), Value::Mapping(Mapping::new()));
    }
    match m.get_mut(key) {
        Some(Value::Mapping(inner)) => inner,
        _ => unreachable!("a mapping was inserted above"),
    }
}

/// The rules this plugin adds after the built-in steps.
pub static RULES: &[llama_stack_config::Rule] = &[trust_acme_ca];

#[cfg(target_arch = "wasm32")]
mod component {
    use llama_stack_config::component::{self as glue, Guest, PluginDef, wit};

    static ACME: PluginDef = PluginDef {
        name: "acme",
        version: env!("CARGO_PKG_VERSION"),
        registry: super::registry,
        rules: super::RULES,
        image_repositories: &["quay.io/acme"],
    };

    struct Acme;

    impl Guest for Acme {
        fn info() -> wit::PluginInfo {
            glue::info(&ACME)
        }
        fn generate(request: String) -> Result<wit::Generated, Vec<wit::FieldError>> {
            glue::generate(&ACME, request)
        }
        fn validate(request: String) -> Vec<wit::FieldError> {
            glue::validate(&ACME, request)
        }
        fn convert(_object: String, _to_version: String) -> Result<String, wit::ConvertError> {
            Err(wit::ConvertError::Unsupported(
                "conversion always uses the built-in engine".into(),
            ))
        }
    }

    llama_stack_config::component::export_plugin!(Acme);
}

#[cfg(test)]
mod tests {
    use super::*;
    use llama_stack_config::GenerateRequest;

    #[test]
    fn serves_its_distribution_with_its_rule() {
        assert_eq!(registry().names(), vec!["acme-enterprise"]);
        registry()
            .check()
            .expect("the embedded distribution and catalog parse");
        let req = GenerateRequest {
            name: Some("x".into()),
            spec: serde_yaml::from_str(
                "distribution: {name: acme-enterprise}\nproviders:\n  inference:\n  - {provider: vllm, endpoint: 'https://llm.acme.internal/v1'}\n",
            )
            .unwrap(),
            ..Default::default()
        };
        let out = llama_stack_config::generate_with(registry(), RULES, &req).expect("generates");
        assert!(
            out.config_yaml.contains("verify: /etc/acme/ca-bundle.pem"),
            "{}",
            out.config_yaml
        );
        assert!(
            out.config_yaml
                .contains("base_url: https://llm.acme.internal/v1")
        );
        // The built-in plugin knows nothing of ACME.
        assert!(llama_stack_config::generate(&req).is_err());
    }

    #[test]
    fn settings_win_over_the_rule() {
        let req = GenerateRequest {
            spec: serde_yaml::from_str(
                "distribution: {name: acme-enterprise}\nproviders:\n  inference:\n  - {provider: vllm, settings: {network: {tls: {verify: false}}}}\n",
            )
            .unwrap(),
            ..Default::default()
        };
        let out = llama_stack_config::generate_with(registry(), RULES, &req).expect("generates");
        assert!(out.config_yaml.contains("verify: false"));
        assert!(out.warnings.iter().any(|w| w.starts_with("acme:")));
    }
}
