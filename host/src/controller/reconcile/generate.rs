//! Step 3: config.yaml from the plugin (in a blocking task: the sandbox runs guest code) and
//! the image the pods run (D15: an image override changes the image only). The user's
//! mistakes come back as field errors and stop the pass with a condition that says them.

use super::failure::{Failure, Stop, failure, generation_failed};
use super::registry::RegistryInputs;
use super::scope::Scope;
use crate::api::v1alpha2::{LlamaStackDistribution, LlamaStackDistributionSpec};
use crate::plugin::PluginInfo;
use crate::settings::OperatorConfig;
use k8s_openapi::api::apps::v1::Deployment;
use llama_stack_config::{FieldError, GenerateRequest, Generated, Reason};
use std::time::Instant;

/// The generated config and the image to run it with.
pub(super) struct Config {
    pub generated: Generated,
    pub image: String,
}

/// Asks the plugin for `req`'s config. `live` (the running Deployment) tells an upgrade
/// failure from a first one.
pub(super) async fn config(
    s: &Scope<'_>,
    settings: &OperatorConfig,
    live: Option<&Deployment>,
    req: GenerateRequest,
    registry: &RegistryInputs,
) -> Result<Config, Stop> {
    let ctx = s.ctx;
    let plugin = ctx.plugins.for_request(&req);
    let image = resolve_image(
        &s.cr.spec,
        plugin.info(),
        settings,
        registry.image.as_deref(),
    );

    // As many plugin calls at once as there are cores: more only add sandboxes (each with its
    // linear memory) waiting for a CPU.
    let _slot = ctx.plugin_slots.acquire().await;
    let started = Instant::now();
    let (host, plugins) = (ctx.host.clone(), ctx.plugins.clone());
    let call = tokio::task::spawn_blocking(move || plugins.for_request(&req).generate(&host, &req))
        .await
        .map_err(crate::controller::Error::from)?;
    ctx.metrics.plugin_call("generate", started.elapsed());
    let generated = match call {
        Err(e) => {
            tracing::error!(plugin = plugin.name(), kind = e.kind(), error = %e, "plugin failed");
            return Err(generation_failure(
                s.cr,
                live.is_some(),
                image.as_deref(),
                &format!("plugin {} failed: {e}", plugin.name()),
                None,
            )
            .into());
        }
        Ok(Err(errors)) => {
            return Err(generation_failure(
                s.cr,
                live.is_some(),
                image.as_deref(),
                &field_errors(&errors),
                errors.first(),
            )
            .into());
        }
        Ok(Ok(g)) => g,
    };
    let Some(image) = image.or_else(|| generated.distribution.image.clone()) else {
        return Err(generation_failed("the distribution resolves to no image").into());
    };
    Ok(Config { generated, image })
}

/// The image before generation: a named distribution's (or its override), a direct image as
/// pinned by the registry read (the pods run the very image whose labels were read). `None`
/// leaves it to the plugin's answer.
fn resolve_image(
    spec: &LlamaStackDistributionSpec,
    info: Option<&PluginInfo>,
    settings: &OperatorConfig,
    pinned: Option<&str>,
) -> Option<String> {
    match (&spec.distribution.name, &spec.distribution.image) {
        (Some(n), _) => info
            .and_then(|i| i.distributions.iter().find(|d| &d.name == n))
            .map(|d| settings.image_for(n, &d.image).to_string()),
        (None, Some(i)) => Some(pinned.map_or_else(|| i.clone(), str::to_string)),
        (None, None) => None,
    }
}

/// A generation failure; `UpgradeConfigFailure` when the image changed under a running
/// Deployment (FR-101).
fn generation_failure(
    cr: &LlamaStackDistribution,
    running: bool,
    image: Option<&str>,
    text: &str,
    first: Option<&FieldError>,
) -> Failure {
    let old_image = cr
        .status
        .as_ref()
        .and_then(|s| s.resolved_distribution.as_ref())
        .and_then(|r| r.image.as_deref());
    if running && old_image.is_some() && image.is_some() && old_image != image {
        return failure(
            "UpgradeConfigFailure",
            format!("Config generation failed after operator upgrade: {text}"),
            "ConfigGenerationFailed",
        );
    }
    let first_message = || first.map(|e| e.message.clone()).unwrap_or_default();
    match first.map(|e| e.reason) {
        Some(Reason::BaseConfigRequired) => failure(
            "BaseConfigRequired",
            first_message(),
            "ConfigGenerationFailed",
        ),
        Some(Reason::UnsupportedConfigVersion) => failure(
            "UnsupportedConfigVersion",
            first_message(),
            "ConfigGenerationFailed",
        ),
        Some(Reason::MissingProviderForResource) => failure(
            "MissingProviderForResource",
            first_message(),
            "ConfigGenerationFailed",
        ),
        _ => generation_failed(text),
    }
}

/// `path: message; path: message`.
fn field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::children::testing::cr;
    use crate::plugin::DistributionInfo;
    use serde_json::json;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "builtin".into(),
            version: "1".into(),
            distributions: vec![DistributionInfo {
                name: "starter".into(),
                image: "docker.io/llamastack/distribution-starter:0.3.0".into(),
                llama_stack_version: "0.3.0".into(),
                description: String::new(),
            }],
            image_repositories: Vec::new(),
        }
    }

    #[test]
    fn the_image_follows_the_distribution_its_override_or_the_pinned_direct_image() {
        let named = cr(json!({"distribution": {"name": "starter"}}));
        let none = OperatorConfig::default();
        assert_eq!(
            resolve_image(&named.spec, Some(&info()), &none, None).as_deref(),
            Some("docker.io/llamastack/distribution-starter:0.3.0")
        );
        let mut overridden = OperatorConfig::default();
        overridden
            .image_overrides
            .insert("starter".into(), "quay.io/acme/starter:patched".into());
        assert_eq!(
            resolve_image(&named.spec, Some(&info()), &overridden, None).as_deref(),
            Some("quay.io/acme/starter:patched")
        );
        // A name the plugin does not serve: the plugin's answer decides (or fails).
        let unknown = cr(json!({"distribution": {"name": "nope"}}));
        assert_eq!(
            resolve_image(&unknown.spec, Some(&info()), &none, None),
            None
        );

        let direct = cr(json!({"distribution": {"image": "quay.io/acme/stack:1"}}));
        assert_eq!(
            resolve_image(&direct.spec, None, &none, None).as_deref(),
            Some("quay.io/acme/stack:1")
        );
        let pinned = "quay.io/acme/stack@sha256:0123";
        assert_eq!(
            resolve_image(&direct.spec, None, &none, Some(pinned)).as_deref(),
            Some(pinned)
        );
    }

    fn field_error(reason: Reason, message: &str) -> FieldError {
        FieldError {
            path: "spec.resources.models[0]".into(),
            reason,
            message: message.into(),
        }
    }

    fn with_status_image(image: &str) -> LlamaStackDistribution {
        let mut c = cr(json!({"distribution": {"name": "starter"}}));
        c.status = serde_json::from_value(json!({"resolvedDistribution": {"image": image}}))
            .expect("status parses");
        c
    }

    #[test]
    fn a_failure_under_a_new_image_is_an_upgrade_failure() {
        let c = with_status_image("old:1");
        let f = generation_failure(&c, true, Some("new:2"), "boom", None);
        assert_eq!(f.conds[0].reason, "UpgradeConfigFailure");
        assert_eq!(
            f.conds[0].message,
            "Config generation failed after operator upgrade: boom"
        );
        // Same image, or nothing running yet: an ordinary failure.
        for (running, image) in [(true, "old:1"), (false, "new:2")] {
            let f = generation_failure(&c, running, Some(image), "boom", None);
            assert_eq!(f.conds[0].reason, "ConfigGenerationFailed");
            assert_eq!(f.conds[0].message, "Failed to generate config.yaml: boom");
        }
    }

    #[test]
    fn the_first_field_error_names_the_reason_when_it_has_one_of_its_own() {
        let c = cr(json!({"distribution": {"name": "starter"}}));
        let e = field_error(
            Reason::MissingProviderForResource,
            "no provider for model m",
        );
        let f = generation_failure(&c, false, None, "ignored", Some(&e));
        assert_eq!(f.conds[0].reason, "MissingProviderForResource");
        assert_eq!(f.conds[0].message, "no provider for model m");
        assert_eq!(f.event.0, "ConfigGenerationFailed");
        assert!(!f.retry, "waits for a change to the CR");
    }

    #[test]
    fn field_errors_are_listed_with_their_paths() {
        let errors = [
            field_error(Reason::MissingProviderForResource, "a"),
            FieldError {
                path: "spec.providers".into(),
                ..field_error(Reason::MissingProviderForResource, "b")
            },
        ];
        assert_eq!(
            field_errors(&errors),
            "spec.resources.models[0]: a; spec.providers: b"
        );
        assert_eq!(field_errors(&[]), "");
    }
}
