//! One reconcile, following the data flow of `../shared/design/architecture.md`: resolve the
//! distribution, gather inputs, ask the plugin for config.yaml, then write the hashed
//! ConfigMap and the Deployment (one write: image, config volume, env, hash; FR-100), the
//! other owned objects, prune, and the status. A failure before the Deployment write leaves
//! the running Deployment untouched (FR-097) and is reported in conditions and an Event.

use super::apply::{self, Outcome};
use super::children::{self, Inputs, names};
use super::error::{Error, api};
use super::inputs::{self, Problem};
use super::status::{self, CONFIG_GENERATED, Cond, SECRETS_RESOLVED};
use super::{Context, RESYNC, RefKind, retry};
use crate::api::shared::{DistributionConfig, Phase, VersionInfo};
use crate::api::v1alpha2::references::secret_key_refs;
use crate::api::v1alpha2::{
    ConfigGeneration, DEFAULT_PORT, LlamaStackDistribution, LlamaStackDistributionStatus,
    ResolvedDistribution,
};
use crate::settings::OperatorConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use llama_stack_config::{BaseConfigInput, BaseSource, FieldError, GenerateRequest, Reason};
use sha2::{Digest, Sha256};
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
    let result = Reconcile::new(&cr, &ctx).and_then_run().await;
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
    tracing::warn!(kind = err.kind(), error = %err, "reconcile failed; retrying");
    retry()
}

struct Pass {
    action: Action,
    /// A user error is now in the status.
    failed: bool,
}

struct Reconcile<'a> {
    cr: &'a LlamaStackDistribution,
    ctx: &'a Context,
}

/// What a failed step reports before the Deployment is touched.
struct Failure {
    conds: Vec<Cond>,
    event: (&'static str, String),
}

fn failure(reason: &str, message: String, event_reason: &'static str) -> Failure {
    Failure {
        conds: vec![Cond::new(CONFIG_GENERATED, false, reason, message.clone())],
        event: (event_reason, message),
    }
}

impl<'a> Reconcile<'a> {
    fn new(cr: &'a LlamaStackDistribution, ctx: &'a Context) -> Reconcile<'a> {
        Reconcile { cr, ctx }
    }

    async fn and_then_run(self) -> Result<Pass, Error> {
        if self.cr.meta().deletion_timestamp.is_some() {
            // Owned objects go by garbage collection; nothing to write.
            return Ok(Pass {
                action: Action::await_change(),
                failed: false,
            });
        }
        let ns = self
            .cr
            .namespace()
            .ok_or(Error::Metadata("LlamaStackDistribution", "namespace"))?;
        let name = self.cr.name_any();
        let uid = self
            .cr
            .uid()
            .ok_or(Error::Metadata("LlamaStackDistribution", "uid"))?;
        let client = self.ctx.client.clone();
        let settings = self.ctx.settings().await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let live = deployments
            .get_opt(&names::deployment(&name))
            .await
            .map_err(api("read", format!("Deployment {ns}/{name}")))?;

        match self
            .generate_and_roll_out(&ns, &name, &uid, &settings, live.as_ref())
            .await?
        {
            Ok(pass) => Ok(pass),
            Err(f) => self.report_failure(&ns, live.as_ref(), f).await,
        }
    }

    /// The happy path; `Err(Failure)` when the user has something to fix.
    async fn generate_and_roll_out(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        settings: &OperatorConfig,
        live: Option<&Deployment>,
    ) -> Result<Result<Pass, Failure>, Error> {
        let ctx = self.ctx;
        let client = ctx.client.clone();
        let spec = &self.cr.spec;
        let spec_json = serde_json::to_value(spec).map_err(|source| Error::Encode {
            what: "spec",
            source,
        })?;
        let mut req = GenerateRequest {
            name: Some(name.to_string()),
            spec: spec_json,
            base_config: None,
            external_provider_metadata: Vec::new(),
        };
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        if let Some(oc) = &spec.override_config {
            match inputs::override_config(&configmaps, ns, &oc.config_map_name).await? {
                Ok(yaml) => {
                    req.base_config = Some(BaseConfigInput {
                        yaml,
                        source: BaseSource::OverrideConfig,
                    })
                }
                Err(p) => return Ok(Err(generation_failed(&p.message))),
            }
        }

        // Plugin and image (D15: an override changes the image only).
        let plugin = ctx.plugins.for_request(&req);
        let image = match (&spec.distribution.name, &spec.distribution.image) {
            (Some(n), _) => plugin
                .info()
                .and_then(|i| i.distributions.iter().find(|d| &d.name == n))
                .map(|d| settings.image_for(n, &d.image).to_string()),
            (None, Some(i)) => Some(i.clone()),
            (None, None) => None,
        };

        let started = Instant::now();
        let (host, plugins) = (ctx.host.clone(), ctx.plugins.clone());
        let call =
            tokio::task::spawn_blocking(move || plugins.for_request(&req).generate(&host, &req))
                .await?;
        ctx.metrics.plugin_call("generate", started.elapsed());
        let generated = match call {
            Err(e) => {
                tracing::error!(plugin = plugin.name(), kind = e.kind(), error = %e, "plugin failed");
                return Ok(Err(self.generation_failure(
                    live,
                    image.as_deref(),
                    &format!("plugin {} failed: {e}", plugin.name()),
                    None,
                )));
            }
            Ok(Err(errors)) => {
                return Ok(Err(self.generation_failure(
                    live,
                    image.as_deref(),
                    &field_errors(&errors),
                    errors.first(),
                )));
            }
            Ok(Ok(g)) => g,
        };
        let Some(image) = image.or_else(|| generated.distribution.image.clone()) else {
            return Ok(Err(generation_failed(
                "the distribution resolves to no image",
            )));
        };

        // Secrets (FR-073) and the Secret derived from a connection string (D9).
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let check =
            inputs::secrets(&secrets, ns, &generated.env, &generated.derived_secrets).await?;
        if let Some(p) = check.problem {
            return Ok(Err(secrets_failed(p)));
        }
        for mut s in check.derived {
            s.metadata.namespace = Some(ns.to_string());
            s.metadata.labels = Some(children::common_labels(name, "storage-secret"));
            s.metadata.owner_references = self.cr.controller_owner_ref(&()).map(|o| vec![o]);
            self.write(&secrets, s, false, "Secret").await?;
        }

        // CA bundle (FR-063): the listed keys' certificates, copied next to the CR.
        let ca = spec
            .networking
            .as_ref()
            .and_then(|n| n.tls.as_ref())
            .and_then(|t| t.ca_bundle.as_ref());
        let ca_hash = match ca {
            Some(bundle) => match inputs::ca_bundle(&client, ns, bundle).await? {
                Ok(pem) => {
                    let hash = hex(&Sha256::digest(pem.as_bytes()));
                    let cm = children::config_map::ca_bundle_config_map(self.cr, &pem)?;
                    self.write(&configmaps, cm, false, "ConfigMap").await?;
                    Some(hash)
                }
                Err(p) => return Ok(Err(generation_failed(&p.message))),
            },
            None => {
                apply::remove(&configmaps, &names::ca_bundle(name), uid).await?;
                None
            }
        };

        // The generated ConfigMap (D10): immutable, so created once and never updated.
        let cm_name = names::generated_config(name, &generated.content_hash);
        let mut created_config = false;
        if configmaps
            .get_opt(&cm_name)
            .await
            .map_err(api("read", format!("ConfigMap {ns}/{cm_name}")))?
            .is_none()
        {
            let cm = children::config_map::generated_config_map(
                self.cr,
                &cm_name,
                &generated.config_yaml,
            )?;
            match configmaps.create(&PostParams::default(), &cm).await {
                Ok(_) => {
                    ctx.metrics.wrote("ConfigMap");
                    created_config = true;
                    tracing::info!(configmap = %cm_name, "generated config written");
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(api("create", format!("ConfigMap {ns}/{cm_name}"))(e)),
            }
        }
        if created_config {
            self.event(
                EventType::Normal,
                "ConfigGenerated",
                format!(
                    "Generated config.yaml in ConfigMap {cm_name}: {} providers, {} resources",
                    generated.provider_count, generated.resource_count
                ),
            )
            .await;
            if !generated.warnings.is_empty() {
                self.event(
                    EventType::Warning,
                    "ConfigWarnings",
                    generated.warnings.join("; "),
                )
                .await;
            }
        }

        // The owned objects; the Deployment in one write.
        let inputs = Inputs {
            cr: self.cr,
            image: &image,
            config_map: &cm_name,
            config_hash: &generated.content_hash,
            secret_env: &generated.env,
            ca_bundle_hash: ca_hash.as_deref(),
            operator_namespace: &ctx.operator_namespace,
            network_policy_enabled: settings.network_policy,
            ingress_domain: settings.ingress_domain.as_deref(),
        };
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        self.write(
            &sa,
            children::service_account::service_account(&inputs)?,
            false,
            "ServiceAccount",
        )
        .await?;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        self.write(
            &services,
            children::service::service(&inputs)?,
            false,
            "Service",
        )
        .await?;
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        if let Some(pvc) = children::pvc::pvc(&inputs)? {
            self.write(&pvcs, pvc, true, "PersistentVolumeClaim")
                .await?;
        }
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let previous_config = live.and_then(mounted_config);
        // The Deployment read at the start of this pass is the live one: no second GET.
        let (outcome, dep) = apply::ensure_against(
            self.ctx,
            &deployments,
            children::deployment::deployment(&inputs)?,
            false,
            live.cloned(),
        )
        .await?;
        if outcome != Outcome::Unchanged {
            ctx.metrics.wrote("Deployment");
        }
        if outcome != Outcome::Unchanged {
            self.event(
                EventType::Normal,
                "DeploymentUpdated",
                format!(
                    "Deployment {} runs {image} with config {cm_name}",
                    dep.name_any()
                ),
            )
            .await;
        }
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
        match children::pdb::pdb(&inputs)? {
            Some(o) => drop(self.write(&pdbs, o, false, "PodDisruptionBudget").await?),
            None => drop(apply::remove(&pdbs, &names::pdb(name), uid).await?),
        }
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
        match children::hpa::hpa(&inputs)? {
            Some(o) => drop(
                self.write(&hpas, o, false, "HorizontalPodAutoscaler")
                    .await?,
            ),
            None => drop(apply::remove(&hpas, &names::hpa(name), uid).await?),
        }
        let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
        match children::network_policy::network_policy(&inputs)? {
            Some(o) => drop(self.write(&nps, o, false, "NetworkPolicy").await?),
            None => drop(apply::remove(&nps, &names::network_policy(name), uid).await?),
        }
        let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
        let route_url = match children::ingress::ingress(&inputs)? {
            Some(o) => {
                let (_, live) = self.write(&ingresses, o, false, "Ingress").await?;
                Some(children::ingress::route_url(&live).unwrap_or_default())
            }
            None => {
                apply::remove(&ingresses, &names::ingress(name), uid).await?;
                None
            }
        };

        // FR-025a: old generated ConfigMaps.
        let mut in_use = vec![cm_name.as_str()];
        if let Some(p) = previous_config.as_deref() {
            in_use.push(p);
        }
        self.prune(&configmaps, name, uid, &in_use).await?;

        // Status.
        let (available, ready, phase) = status::availability(Some(&dep));
        let port = spec
            .networking
            .as_ref()
            .map(|n| n.port)
            .unwrap_or(DEFAULT_PORT);
        let tls = spec
            .networking
            .as_ref()
            .and_then(|n| n.tls.as_ref())
            .is_some_and(|t| t.enabled);
        let old = self.cr.status.clone().unwrap_or_default();
        let generated_at = old
            .config_generation
            .as_ref()
            .filter(|g| g.config_map_name.as_deref() == Some(cm_name.as_str()))
            .and_then(|g| g.generated_at.clone())
            .unwrap_or_else(now);
        let conds = vec![
            status::config_generated(generated.provider_count, generated.resource_count),
            status::deployment_updated(&cm_name),
            available,
            status::secrets_resolved(check.count),
        ];
        let new = LlamaStackDistributionStatus {
            phase: Some(phase),
            resolved_distribution: Some(ResolvedDistribution {
                name: spec.distribution.name.clone(),
                image: Some(image.clone()),
                config_source: serde_json::to_value(generated.distribution.config_source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                config_hash: Some(format!(
                    "sha256:{}",
                    generated.distribution.base_config_hash
                )),
            }),
            config_generation: Some(ConfigGeneration {
                config_map_name: Some(cm_name.clone()),
                generated_at: Some(generated_at),
                provider_count: Some(generated.provider_count as i32),
                resource_count: Some(generated.resource_count as i32),
                config_version: Some(generated.config_version as i32),
            }),
            available_replicas: Some(ready),
            service_url: Some(format!(
                "{}://{}.{ns}.svc.cluster.local:{port}",
                if tls { "https" } else { "http" },
                names::service(name)
            )),
            route_url,
            ..self.carried(&old)
        };
        self.write_status(new, &conds).await?;
        Ok(Ok(Pass {
            action: Action::requeue(RESYNC),
            failed: false,
        }))
    }

    /// Status fields that survive every pass: versions and the distribution registry.
    fn carried(&self, old: &LlamaStackDistributionStatus) -> LlamaStackDistributionStatus {
        let distributions = self.ctx.plugins.builtin().info().map(|i| {
            i.distributions
                .iter()
                .map(|d| (d.name.clone(), d.image.clone()))
                .collect()
        });
        LlamaStackDistributionStatus {
            external_providers: old.external_providers.clone(),
            version: Some(VersionInfo {
                operator_version: Some(self.ctx.operator_version.clone()),
                llama_stack_server_version: old
                    .version
                    .as_ref()
                    .and_then(|v| v.llama_stack_server_version.clone()),
                last_updated: None,
            }),
            distribution_config: Some(DistributionConfig {
                active_distribution: Some(
                    self.cr
                        .spec
                        .distribution
                        .name
                        .clone()
                        .unwrap_or_else(|| "custom".into()),
                ),
                providers: old
                    .distribution_config
                    .as_ref()
                    .and_then(|d| d.providers.clone()),
                available_distributions: distributions,
            }),
            ..Default::default()
        }
    }

    /// A generation failure; `UpgradeConfigFailure` when the image changed under a running
    /// Deployment (FR-101).
    fn generation_failure(
        &self,
        live: Option<&Deployment>,
        image: Option<&str>,
        text: &str,
        first: Option<&FieldError>,
    ) -> Failure {
        let old_image = self
            .cr
            .status
            .as_ref()
            .and_then(|s| s.resolved_distribution.as_ref())
            .and_then(|r| r.image.as_deref());
        if live.is_some() && old_image.is_some() && image.is_some() && old_image != image {
            return failure(
                "UpgradeConfigFailure",
                format!("Config generation failed after operator upgrade: {text}"),
                "ConfigGenerationFailed",
            );
        }
        match first.map(|e| e.reason) {
            Some(Reason::BaseConfigRequired) => failure(
                "BaseConfigRequired",
                first_message(first),
                "ConfigGenerationFailed",
            ),
            Some(Reason::UnsupportedConfigVersion) => failure(
                "UnsupportedConfigVersion",
                first_message(first),
                "ConfigGenerationFailed",
            ),
            Some(Reason::MissingProviderForResource) => failure(
                "MissingProviderForResource",
                first_message(first),
                "ConfigGenerationFailed",
            ),
            _ => generation_failed(text),
        }
    }

    /// FR-097: the Deployment stays as it is; phase Failed; Available still tells the truth
    /// about the running pods (D12).
    async fn report_failure(
        &self,
        _ns: &str,
        live: Option<&Deployment>,
        f: Failure,
    ) -> Result<Pass, Error> {
        let old = self.cr.status.clone().unwrap_or_default();
        let old_conds = old.conditions.clone().unwrap_or_default();
        let (available, ready, _) = status::availability(live);
        let mut conds = f.conds.clone();
        conds.push(available);
        // Keep what still holds from the last good pass.
        for keep in [status::DEPLOYMENT_UPDATED, SECRETS_RESOLVED] {
            if !conds.iter().any(|c| c.type_ == keep)
                && let Some(c) = old_conds.iter().find(|c| c.type_ == keep)
            {
                conds.push(Cond::new(
                    keep,
                    c.status == "True",
                    &c.reason,
                    c.message.clone(),
                ));
            }
        }
        let event_cond = &f.conds[0];
        if status::changed(&old_conds, event_cond) {
            self.event(EventType::Warning, f.event.0, f.event.1.clone())
                .await;
        }
        let new = LlamaStackDistributionStatus {
            phase: Some(Phase::Failed),
            resolved_distribution: old.resolved_distribution.clone(),
            config_generation: old.config_generation.clone(),
            available_replicas: Some(ready),
            service_url: old.service_url.clone(),
            route_url: old.route_url.clone(),
            ..self.carried(&old)
        };
        self.write_status(new, &conds).await?;
        tracing::info!(reason = %event_cond.reason, "reconcile stopped before the Deployment: waiting for a change");
        Ok(Pass {
            action: Action::await_change(),
            failed: true,
        })
    }

    /// Applies the status when it differs from the stored one (no write for a no-op pass).
    async fn write_status(
        &self,
        mut new: LlamaStackDistributionStatus,
        conds: &[Cond],
    ) -> Result<(), Error> {
        let old = self.cr.status.clone().unwrap_or_default();
        let old_conds = old.conditions.clone().unwrap_or_default();
        new.observed_generation = self.cr.metadata.generation;
        new.conditions = Some(status::merge(
            &old_conds,
            conds,
            self.cr.metadata.generation,
            &now(),
        ));
        if new == old {
            return Ok(());
        }
        let ns = self.cr.namespace().unwrap_or_default();
        let api: Api<LlamaStackDistribution> = Api::namespaced(self.ctx.client.clone(), &ns);
        let body = serde_json::json!({
            "apiVersion": "llamastack.io/v1alpha2",
            "kind": "LlamaStackDistribution",
            "status": new,
        });
        api.patch_status(
            &self.cr.name_any(),
            &PatchParams::apply(children::MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(api_err_status(&ns, &self.cr.name_any()))?;
        self.ctx.metrics.wrote("LlamaStackDistribution/status");
        tracing::info!(phase = ?new.phase, "status written");
        Ok(())
    }

    async fn write<K>(
        &self,
        api: &Api<K>,
        obj: K,
        create_only: bool,
        kind: &'static str,
    ) -> Result<(Outcome, K), Error>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let (outcome, live) = apply::ensure(self.ctx, api, obj, create_only).await?;
        if outcome != Outcome::Unchanged {
            self.ctx.metrics.wrote(kind);
        }
        Ok((outcome, live))
    }

    async fn prune(
        &self,
        configmaps: &Api<ConfigMap>,
        name: &str,
        uid: &str,
        in_use: &[&str],
    ) -> Result<(), Error> {
        let selector = format!(
            "app.kubernetes.io/instance={name},app.kubernetes.io/component=generated-config,app.kubernetes.io/managed-by={}",
            children::MANAGER
        );
        let list = configmaps
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(api("list", format!("generated ConfigMaps of {name}")))?;
        let ours: Vec<ConfigMap> = list
            .items
            .into_iter()
            .filter(|c| c.owner_references().iter().any(|o| o.uid == uid))
            .map(|c| ConfigMap {
                metadata: c.metadata,
                ..Default::default()
            })
            .collect();
        for old in super::prune::to_delete(&ours, in_use) {
            if apply::remove(configmaps, &old, uid).await? {
                self.ctx.metrics.wrote("ConfigMap");
            }
        }
        Ok(())
    }

    /// Publishes an Event on the CR; a failure to record is logged, never fatal.
    async fn event(&self, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        match self
            .ctx
            .recorder
            .publish(&ev, &self.cr.object_ref(&()))
            .await
        {
            Ok(()) => self.ctx.metrics.wrote("Event"),
            Err(e) => tracing::warn!(error = %e, reason, "failed to publish an event"),
        }
    }
}

fn api_err_status(ns: &str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    api(
        "write the status of",
        format!("LlamaStackDistribution {ns}/{name}"),
    )
}

fn generation_failed(text: &str) -> Failure {
    failure(
        "ConfigGenerationFailed",
        format!("Failed to generate config.yaml: {text}"),
        "ConfigGenerationFailed",
    )
}

fn secrets_failed(p: Problem) -> Failure {
    Failure {
        conds: vec![
            Cond::new(SECRETS_RESOLVED, false, p.reason, p.message.clone()),
            Cond::new(
                CONFIG_GENERATED,
                false,
                "ConfigGenerationFailed",
                format!("Failed to generate config.yaml: {}", p.message),
            ),
        ],
        event: ("SecretResolutionFailed", p.message),
    }
}

fn first_message(e: Option<&FieldError>) -> String {
    e.map(|e| e.message.clone()).unwrap_or_default()
}

fn field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The generated ConfigMap a Deployment mounts.
fn mounted_config(dep: &Deployment) -> Option<String> {
    dep.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == "config")?
        .config_map
        .as_ref()
        .map(|c| c.name.clone())
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
