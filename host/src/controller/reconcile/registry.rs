//! Step 2: the registry reads (FR-027f..j, D16, D17). A direct image's labels carry its base
//! config; each external provider's image carries its package metadata. Read with the
//! credentials the pods would pull with; a failure names the field, the image and the fix.

use super::failure::{Failure, Stop, failure};
use super::scope::{Scope, now};
use crate::api::v1alpha2::{
    ExternalProviderRef, ExternalProviderStatus, LlamaStackDistributionSpec,
};
use crate::controller::children::external::{self, ExternalInstall};
use crate::controller::children::names;
use crate::controller::inputs;
use crate::oci::OciError;
use llama_stack_config::{BaseConfigInput, BaseSource, ExternalProviderMetadata, GenerateRequest};

/// What the registry reads add to a pass.
#[derive(Debug, Default)]
pub(super) struct RegistryInputs {
    /// The direct image pinned to the digest its labels were read from.
    pub image: Option<String>,
    /// Install init containers, in CRD order (D16).
    pub installs: Vec<ExternalInstall>,
}

/// Reads what the registry says about the CR's images into `req` (base config, provider
/// metadata) and returns what the pods need of it.
pub(super) async fn read(s: &Scope<'_>, req: &mut GenerateRequest) -> Result<RegistryInputs, Stop> {
    let spec = &s.cr.spec;
    let mut out = RegistryInputs::default();
    let direct = direct_image(spec);
    let externals = spec
        .external_providers
        .as_ref()
        .map(external::in_crd_order)
        .unwrap_or_default();
    if direct.is_none() && externals.is_empty() {
        return Ok(out);
    }
    let sa = names::pod_service_account(spec, &s.name);
    let creds = inputs::pull_credentials(&s.ctx.client, &s.ns, &sa).await?;
    let registry = &s.ctx.registry;
    if let Some(image) = direct {
        match registry.image_config(image, &creds).await {
            Ok((pinned, config)) => {
                out.image = Some(pinned.reference);
                if let Some(c) = config {
                    req.base_config = Some(BaseConfigInput {
                        yaml: c.yaml,
                        source: BaseSource::OciLabel,
                    });
                }
            }
            Err(e) => return Err(registry_failed(&e, "spec.distribution.image", None).into()),
        }
    }
    for (i, (api, r)) in externals.iter().enumerate() {
        match registry.provider_package(&r.image, &creds).await {
            Ok((pinned, p)) => {
                req.external_provider_metadata
                    .push(ExternalProviderMetadata {
                        provider_id: r.provider_id.clone(),
                        image: r.image.clone(),
                        provider_type: p.provider_type.clone(),
                        package_name: p.package_name.clone(),
                        api: p.api.clone(),
                    });
                out.installs.push(ExternalInstall {
                    provider_id: r.provider_id.clone(),
                    image: pinned.reference,
                    pull_policy: external::pull_policy(r.image_pull_policy).to_string(),
                    wheel_path: p.wheel_path.clone(),
                    dependency_wheels: p.dependency_wheels.clone(),
                });
            }
            Err(e) => {
                let path = format!("spec.externalProviders.{}[{i}]", field_of(api));
                return Err(registry_failed(&e, &path, Some(r)).into());
            }
        }
    }
    Ok(out)
}

/// The image whose labels give the base config: only a direct image without overrideConfig.
/// overrideConfig wins over labels (D11); a named distribution keeps the config pinned with
/// its name in this release (FR-027d, D15).
fn direct_image(spec: &LlamaStackDistributionSpec) -> Option<&str> {
    spec.distribution
        .image
        .as_deref()
        .filter(|_| spec.distribution.name.is_none() && spec.override_config.is_none())
}

/// A registry read failed: the condition names the field, the image and the fix (D17).
fn registry_failed(e: &OciError, path: &str, provider: Option<&ExternalProviderRef>) -> Failure {
    let message = format!("{path}: {e}");
    let mut f = failure(e.reason(), message.clone(), "ConfigGenerationFailed");
    f.retry = e.transient();
    f.provider = provider.map(|r| ExternalProviderStatus {
        provider_id: r.provider_id.clone(),
        image: Some(r.image.clone()),
        phase: Some("Failed".into()),
        message: Some(e.to_string()),
        init_container_name: Some(external::init_container_name(&r.provider_id)),
        last_transition_time: Some(now()),
    });
    f
}

/// `vector_io` -> `vectorIo`: the CR's spelling of a section, for field paths.
fn field_of(api: &str) -> &'static str {
    match api {
        "inference" => "inference",
        "safety" => "safety",
        "agents" => "agents",
        "vector_io" => "vectorIo",
        "datasetio" => "datasetIo",
        "scoring" => "scoring",
        "eval" => "eval",
        "tool_runtime" => "toolRuntime",
        _ => "postTraining",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha2::ExternalProvidersSpec;
    use crate::controller::children::testing::cr;
    use crate::controller::status::CONFIG_GENERATED;
    use serde_json::json;

    #[test]
    fn only_a_direct_image_without_override_config_is_read_for_its_config() {
        let image = "quay.io/acme/stack:1";
        let direct = cr(json!({"distribution": {"image": image}}));
        assert_eq!(direct_image(&direct.spec), Some(image));
        let named = cr(json!({"distribution": {"name": "starter"}}));
        assert_eq!(direct_image(&named.spec), None);
        let overridden = cr(json!({"distribution": {"image": image},
            "overrideConfig": {"configMapName": "base"}}));
        assert_eq!(direct_image(&overridden.spec), None);
    }

    #[test]
    fn field_paths_use_the_crs_spelling_of_every_section() {
        // Every section `in_crd_order` yields maps back to its field in the CR.
        let r = json!([{"providerId": "p", "image": "i"}]);
        let all: ExternalProvidersSpec = serde_json::from_value(json!({
            "inference": r, "safety": r, "agents": r, "vectorIo": r, "datasetIo": r,
            "scoring": r, "eval": r, "toolRuntime": r, "postTraining": r,
        }))
        .expect("every section parses");
        let mut fields: Vec<&str> = external::in_crd_order(&all)
            .iter()
            .map(|(api, _)| field_of(api))
            .collect();
        assert_eq!(fields.len(), 9);
        fields.sort_unstable();
        fields.dedup();
        assert_eq!(fields.len(), 9, "one field per section: {fields:?}");
        let spelled = serde_json::to_value(&all).expect("encodes");
        for f in fields {
            assert!(
                spelled.get(f).is_some(),
                "{f} is no field of externalProviders"
            );
        }
    }

    #[test]
    fn a_registry_failure_names_the_field_and_marks_the_provider_failed() {
        let unreachable = OciError::Unreachable {
            image: "r.example/p:1".into(),
            registry: "r.example".into(),
            detail: "connection refused".into(),
        };
        let r: ExternalProviderRef =
            serde_json::from_value(json!({"providerId": "acme", "image": "r.example/p:1"}))
                .expect("parses");
        let path = "spec.externalProviders.inference[0]";
        let f = registry_failed(&unreachable, path, Some(&r));
        assert!(f.retry, "an unreachable registry may come back by itself");
        assert_eq!(f.conds[0].type_, CONFIG_GENERATED);
        assert!(!f.conds[0].ok);
        assert_eq!(f.conds[0].reason, "RegistryUnreachable");
        assert!(f.conds[0].message.starts_with(&format!("{path}: ")));
        let p = f.provider.expect("the provider's status entry");
        assert_eq!(p.provider_id, "acme");
        assert_eq!(p.phase.as_deref(), Some("Failed"));
        assert_eq!(
            p.init_container_name,
            Some(external::init_container_name("acme"))
        );

        let bad = OciError::Reference {
            image: "Bad".into(),
            detail: "uppercase".into(),
        };
        let f = registry_failed(&bad, "spec.distribution.image", None);
        assert!(!f.retry, "a bad reference waits for a change to the CR");
        assert!(f.provider.is_none());
    }
}
