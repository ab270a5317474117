//! Step 1: the plugin's request. The CR's spec and name, and the base config its
//! `overrideConfig` ConfigMap holds (D11, FR-074); the registry step adds the rest.

use super::failure::{Stop, generation_failed};
use super::scope::Scope;
use crate::api::v1alpha2::LlamaStackDistributionSpec;
use crate::controller::error::Error;
use crate::controller::inputs;
use k8s_openapi::api::core::v1::ConfigMap;
use llama_stack_config::{BaseConfigInput, BaseSource, GenerateRequest};

/// The request for the CR in `s`; a missing overrideConfig ConfigMap or key stops the pass.
pub(super) async fn request(s: &Scope<'_>) -> Result<GenerateRequest, Stop> {
    let mut req = from_spec(&s.name, &s.cr.spec)?;
    if let Some(oc) = &s.cr.spec.override_config {
        let configmaps = s.api::<ConfigMap>();
        match inputs::override_config(&configmaps, &s.ns, &oc.config_map_name).await? {
            Ok(yaml) => {
                req.base_config = Some(BaseConfigInput {
                    yaml,
                    source: BaseSource::OverrideConfig,
                })
            }
            Err(p) => return Err(generation_failed(&p.message).into()),
        }
    }
    Ok(req)
}

/// What the spec alone puts in the request: no base config, no provider metadata yet.
fn from_spec(name: &str, spec: &LlamaStackDistributionSpec) -> Result<GenerateRequest, Error> {
    let spec = serde_json::to_value(spec).map_err(|source| Error::Encode {
        what: "spec",
        source,
    })?;
    Ok(GenerateRequest {
        name: Some(name.to_string()),
        spec,
        base_config: None,
        external_provider_metadata: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::children::testing::cr;
    use serde_json::json;

    #[test]
    fn the_request_carries_the_spec_as_the_cr_spells_it() {
        let cr = cr(json!({"distribution": {"name": "starter"},
            "overrideConfig": {"configMapName": "base"}}));
        let req = from_spec("demo", &cr.spec).expect("the spec encodes");
        assert_eq!(req.name.as_deref(), Some("demo"));
        assert_eq!(req.spec["distribution"]["name"], "starter");
        // camelCase, as the plugin's input model reads it.
        assert_eq!(req.spec["overrideConfig"]["configMapName"], "base");
        // The ConfigMap's content and the registry's answers come from the later reads.
        assert!(req.base_config.is_none());
        assert!(req.external_provider_metadata.is_empty());
    }
}
