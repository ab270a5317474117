//! One reconcile, as the pipeline of `../shared/design/architecture.md`; each step is a module
//! whose output is the next one's input:
//!
//! 1. [`gather`]: the plugin's request, with the overrideConfig it names;
//! 2. [`registry`]: what the images' registries add (labelled base config, provider packages);
//! 3. [`generate`]: config.yaml from the plugin, and the image to run;
//! 4. [`rollout`]: the Secrets and CA bundle it needs, the hashed ConfigMap, the Deployment
//!    (one write: image, config volume, env, hash; FR-100), the other owned objects, prune;
//! 5. [`report`]: the status, and what the server says about itself.
//!
//! A step that finds something for the user to fix stops with a [`failure::Failure`]: the
//! running Deployment is left as it is (FR-097) and [`report::failed`] says it in conditions
//! and an Event. Each step shares only the pass's [`scope::Scope`] and its inputs.

mod failure;
mod gather;
mod generate;
mod registry;
mod report;
mod rollout;
mod scope;

use super::error::{Error, api};
use super::{Context, RefKind, children::names, retry};
use crate::api::v1alpha2::LlamaStackDistribution;
use crate::api::v1alpha2::references::secret_key_refs;
use crate::settings::OperatorConfig;
use failure::Stop;
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use scope::{Pass, Scope};
use std::sync::Arc;
use std::time::Instant;

/// Names of the Secrets or ConfigMaps `cr` references (for the watches).
pub fn references(cr: &LlamaStackDistribution, kind: RefKind) -> Vec<String> {
    let spec = serde_json::to_value(&cr.spec).unwrap_or_default();
    let mut out: Vec<String> = match kind {
        RefKind::Secret => secret_key_refs(&spec)
            .into_iter()
            .map(|(_, name, _)| name)
            .collect(),
        RefKind::ConfigMap => Vec::new(),
    };
    let mut push = |v: &serde_json::Value| {
        if let Some(s) = v.as_str() {
            out.push(s.to_string());
        }
    };
    match kind {
        RefKind::Secret => {
            push(&spec["storage"]["sql"]["secretRef"]["name"]);
            push(&spec["networking"]["tls"]["secretName"]);
        }
        RefKind::ConfigMap => {
            push(&spec["overrideConfig"]["configMapName"]);
            push(&spec["networking"]["tls"]["caBundle"]["configMapName"]);
        }
    }
    out
}

#[tracing::instrument(skip_all, fields(ns = %cr.namespace().unwrap_or_default(), name = %cr.name_any(), generation = cr.metadata.generation))]
pub async fn reconcile(
    cr: Arc<LlamaStackDistribution>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = run(&cr, &ctx).await;
    match &result {
        Ok(Pass { failed, .. }) => ctx
            .metrics
            .reconciled(if *failed { "failed" } else { "ok" }, started.elapsed()),
        Err(e) => {
            ctx.metrics.reconciled("error", started.elapsed());
            ctx.metrics.error(e.kind());
        }
    }
    result.map(|p| p.action)
}

pub fn error_policy(_cr: Arc<LlamaStackDistribution>, err: &Error, _ctx: Arc<Context>) -> Action {
    if err.namespace_terminating() {
        // Retrying would only be refused again; the CR goes with its namespace. (A pass
        // that began before the namespace watch saw the deletion.)
        tracing::info!(error = %err, "namespace is being deleted; not retrying");
        return Action::await_change();
    }
    tracing::warn!(kind = err.kind(), error = %err, "reconcile failed; retrying");
    retry()
}

async fn run(cr: &LlamaStackDistribution, ctx: &Context) -> Result<Pass, Error> {
    // An owner being deleted, or its namespace: the garbage collector is removing what it
    // owns, and a write would recreate it or be refused.
    let caches = ctx.synced_caches().await?;
    if cr.metadata.deletion_timestamp.is_some()
        || caches.namespace_terminating(&cr.namespace().unwrap_or_default())
    {
        // Owned objects go by garbage collection; nothing to write.
        return Ok(Pass {
            action: Action::await_change(),
            failed: false,
        });
    }
    let settings = ctx.settings(&caches);
    let scope = Scope::new(cr, ctx, caches)?;
    let live = scope
        .api::<Deployment>()
        .get_opt(&names::deployment(&scope.name))
        .await
        .map_err(api(
            "read",
            format!("Deployment {}/{}", scope.ns, scope.name),
        ))?;
    match pipeline(&scope, &settings, live.as_ref()).await {
        Ok(pass) => Ok(pass),
        Err(Stop::Failed(f)) => report::failed(&scope, live.as_ref(), f).await,
        Err(Stop::Error(e)) => Err(e),
    }
}

/// The happy path. `live` is the Deployment as this pass found it.
async fn pipeline(
    s: &Scope<'_>,
    settings: &OperatorConfig,
    live: Option<&Deployment>,
) -> Result<Pass, Stop> {
    let mut req = gather::request(s).await?;
    let registry = registry::read(s, &mut req).await?;
    let config = generate::config(s, settings, live, req, &registry).await?;
    let rolled_out = rollout::roll_out(s, settings, live, &config, &registry).await?;
    Ok(report::rolled_out(s, &config, &registry, rolled_out).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::children::testing::cr;
    use serde_json::json;

    #[test]
    fn references_name_what_the_watches_follow() {
        let cr = cr(json!({
            "distribution": {"name": "starter"},
            "overrideConfig": {"configMapName": "base"},
            "providers": {"inference": [{"provider": "vllm", "endpoint": "http://v:8000",
                "apiKey": {"secretKeyRef": {"name": "vllm-key", "key": "token"}}}]},
            "networking": {"tls": {"enabled": true, "secretName": "tls",
                "caBundle": {"configMapName": "cas"}}},
        }));
        let secrets = references(&cr, RefKind::Secret);
        assert!(secrets.contains(&"vllm-key".to_string()), "{secrets:?}");
        assert!(secrets.contains(&"tls".to_string()), "{secrets:?}");
        assert!(!secrets.contains(&"base".to_string()), "{secrets:?}");
        assert_eq!(references(&cr, RefKind::ConfigMap), vec!["base", "cas"]);
        let plain = crate::controller::children::testing::minimal();
        assert!(references(&plain, RefKind::Secret).is_empty());
        assert!(references(&plain, RefKind::ConfigMap).is_empty());
    }
}
