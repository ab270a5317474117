//! One reconcile, following the data flow of `../shared/design/architecture.md`: resolve the
//! distribution, gather inputs, ask the plugin for config.yaml, then write the hashed
//! ConfigMap and the Deployment (one write: image, config volume, env, hash; FR-100), the
//! other owned objects, prune, and the status. A failure before the Deployment write leaves
//! the running Deployment untouched (FR-097) and is reported in conditions and an Event.

use super::apply::{self, Outcome};
use super::children::deployment::VOLUME_CONFIG;
use super::children::external::ExternalInstall;
use super::children::{self, Inputs, names};
use super::error::{Error, api};
use super::inputs::{self, Problem};
use super::pods;
use super::server_info;
use super::status::{self, CONFIG_GENERATED, Cond, SECRETS_RESOLVED};
use super::{Context, RESYNC, RefKind, retry};
use crate::api::shared::{DistributionConfig, Phase, VersionInfo};
use crate::api::v1alpha2::references::secret_key_refs;
use crate::api::v1alpha2::{
    ConfigGeneration, DEFAULT_PORT, LlamaStackDistribution, LlamaStackDistributionStatus,
    ResolvedDistribution,
};
use crate::api::v1alpha2::{ExternalProviderRef, ExternalProviderStatus};
use crate::oci::OciError;
use crate::settings::OperatorConfig;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use llama_stack_config::{
    BaseConfigInput, BaseSource, ExternalProviderMetadata, FieldError, GenerateRequest, Reason,
};
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
    /// Retry with backoff: the cause may go away without a change to the CR (registry).
    retry: bool,
    /// A failed external provider's status entry.
    provider: Option<ExternalProviderStatus>,
}

fn failure(reason: &str, message: String, event_reason: &'static str) -> Failure {
    Failure {
        conds: vec![Cond::new(CONFIG_GENERATED, false, reason, message.clone())],
        event: (event_reason, message),
        retry: false,
        provider: None,
    }
}

/// What the registry reads add to a pass.
#[derive(Default)]
struct RegistryInputs {
    /// The direct image pinned to the digest its labels were read from.
    image: Option<String>,
    /// Install init containers, in CRD order (D16).
    installs: Vec<ExternalInstall>,
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
        init_container_name: Some(children::external::init_container_name(&r.provider_id)),
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

        // Registry reads (FR-027f..j, D16, D17): the config a direct image's labels carry,
        // and every external provider's package metadata.
        let registry = match self.read_registry(ns, name, &mut req).await? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };

        // Plugin and image (D15: an override changes the image only).
        let plugin = ctx.plugins.for_request(&req);
        let image = match (&spec.distribution.name, &spec.distribution.image) {
            (Some(n), _) => plugin
                .info()
                .and_then(|i| i.distributions.iter().find(|d| &d.name == n))
                .map(|d| settings.image_for(n, &d.image).to_string()),
            // The pods run the very image whose labels were read.
            (None, Some(i)) => Some(registry.image.clone().unwrap_or_else(|| i.clone())),
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
            let (outcome, _) = self.write(&secrets, s, false, "Secret").await?;
            // Said when the derived Secret changes, not on every pass.
            if outcome != Outcome::Unchanged {
                for w in &check.warnings {
                    self.event(
                        EventType::Warning,
                        "ConnectionStringParametersIgnored",
                        w.clone(),
                    )
                    .await;
                }
            }
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
            external: &registry.installs,
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
        let (_, service) = self
            .write(
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
        let previous_config = live
            .and_then(|d| pods::mounted_config(Some(&d.spec.as_ref()?.template), VOLUME_CONFIG));
        // The Deployment read at the start of this pass is the live one: no second GET.
        let (outcome, dep) = match apply::ensure_against(
            self.ctx,
            &deployments,
            children::deployment::deployment(&inputs)?,
            false,
            live.cloned(),
        )
        .await
        {
            Ok(written) => written,
            // The config is generated and its ConfigMap written; the running pods stay as
            // they are (FR-097) and the status says who refused what.
            Err(e) => match e.refusal() {
                Some(message) => {
                    return Ok(Err(deployment_refused(
                        &names::deployment(name),
                        message,
                        vec![
                            status::config_generated(
                                generated.provider_count,
                                generated.resource_count,
                            ),
                            status::secrets_resolved(check.count),
                        ],
                    )));
                }
                None => return Err(e),
            },
        };
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

        // What the pods do, and which of them run this config (issue 17).
        let (server_pods, sets) = self.server_pods(ns, name).await?;
        let template = pods::current_template_hash(&dep, &sets);
        let new_problem = template.as_deref().and_then(|h| {
            server_pods
                .iter()
                .filter(|p| pods::runs_template(p, h))
                .find_map(pods::problem)
        });
        let any_problem = server_pods.iter().find_map(pods::problem);

        // FR-025a: old generated ConfigMaps; never one that pods still mount.
        let mut in_use = vec![cm_name.clone()];
        in_use.extend(previous_config);
        in_use.extend(pods::configs_in_use(&sets, VOLUME_CONFIG));
        let in_use: Vec<&str> = in_use.iter().map(String::as_str).collect();
        self.prune(&configmaps, name, uid, &in_use).await?;

        // Status.
        let (available, progressing, ready, phase) = status::availability(
            Some(&dep),
            status::Pods {
                new_problem: new_problem.as_ref(),
                any_problem: any_problem.as_ref(),
            },
        );
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
        // spec 001 FR-028: each provider's install state, from the newest pod.
        let external_providers = if registry.installs.is_empty() {
            None
        } else {
            let pod = server_pods
                .iter()
                .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0))
                .cloned();
            let previous = old.external_providers.as_deref().unwrap_or_default();
            let statuses = children::external::provider_statuses(
                &registry.installs,
                pod.as_ref(),
                previous,
                now(),
            );
            // One Event per provider when its install settles (spec 001 FR-028..030).
            for s in &statuses {
                let before = previous.iter().find(|p| p.provider_id == s.provider_id);
                if before.and_then(|p| p.phase.as_deref()) == s.phase.as_deref() {
                    continue;
                }
                let note = format!(
                    "external provider {}: {}",
                    s.provider_id,
                    s.message.as_deref().unwrap_or_default()
                );
                match s.phase.as_deref() {
                    Some("Ready") => {
                        self.event(EventType::Normal, "ExternalProviderInstalled", note)
                            .await
                    }
                    Some("Failed") => {
                        self.event(EventType::Warning, "ExternalProviderFailed", note)
                            .await
                    }
                    _ => {}
                }
            }
            Some(statuses)
        };
        let old_conds = old.conditions.clone().unwrap_or_default();
        if status::stalled(&old_conds, &progressing) {
            self.event(
                EventType::Warning,
                status::NEW_CONFIG_NOT_READY,
                progressing.message.clone(),
            )
            .await;
        }
        let mut conds = vec![
            status::config_generated(generated.provider_count, generated.resource_count),
            status::deployment_updated(&cm_name),
            available,
            progressing,
            status::secrets_resolved(check.count),
        ];
        // What the server says (issue 17): once the config is rolled out, then each minute.
        let mut carried = self.carried(&old);
        let ready_now = phase == Phase::Ready;
        if ready_now && ctx.server_read_due(&format!("{ns}/{name}"), &cm_name) {
            let read = match self.server_target(ns, &service, port).await? {
                Ok(target) => ctx.read_server(&target).await,
                Err(message) => Err(message),
            };
            conds.push(server_info::apply(read, &mut carried, now()));
        }
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
            external_providers,
            ..carried
        };
        self.write_status(new, &conds).await?;
        ctx.backoff(&format!("{ns}/{name}"), false);
        Ok(Ok(Pass {
            action: Action::requeue(if ready_now {
                server_info::REFRESH
            } else {
                RESYNC
            }),
            failed: false,
        }))
    }

    /// Where the server listens: its Service's ClusterIP; with TLS, the Secret's CA (or its
    /// certificate) to verify it with. `Err` says why it cannot be reached.
    async fn server_target(
        &self,
        ns: &str,
        service: &Service,
        port: i32,
    ) -> Result<Result<server_info::Target, String>, Error> {
        let ip = service
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let (Some(ip), Ok(port)) = (ip, u16::try_from(port)) else {
            return Ok(Err(format!(
                "Service {ns}/{} has no ClusterIP to reach the server at",
                service.name_any()
            )));
        };
        let mut target = server_info::Target::new(ip, port, &service.name_any(), ns);
        if let Some(secret) = children::server_tls(self.cr).and_then(|t| t.secret_name.as_deref()) {
            let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), ns);
            let data = secrets
                .get_opt(secret)
                .await
                .map_err(api("read", format!("Secret {ns}/{secret}")))?
                .and_then(|s| s.data)
                .unwrap_or_default();
            match data.get("ca.crt").or_else(|| data.get("tls.crt")) {
                Some(pem) => target.tls_roots = Some(pem.0.clone()),
                None => {
                    return Ok(Err(format!(
                        "Secret {ns}/{secret} has neither ca.crt nor tls.crt to verify the server with"
                    )));
                }
            }
        }
        Ok(Ok(target))
    }

    /// The server pods of this CR and the ReplicaSets of its Deployment (by the Deployment's
    /// selector labels).
    async fn server_pods(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(Vec<Pod>, Vec<ReplicaSet>), Error> {
        let selector = children::selector_labels(name)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let lp = ListParams::default().labels(&selector);
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let pods = pods
            .list(&lp)
            .await
            .map_err(api("list", format!("pods of {ns}/{name}")))?;
        let sets: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), ns);
        let sets = sets
            .list(&lp)
            .await
            .map_err(api("list", format!("ReplicaSets of {ns}/{name}")))?;
        Ok((pods.items, sets.items))
    }

    /// What the registry says about this CR's images; `Err(Failure)` names the image and
    /// what to fix, and the running Deployment stays (FR-097).
    async fn read_registry(
        &self,
        ns: &str,
        name: &str,
        req: &mut GenerateRequest,
    ) -> Result<Result<RegistryInputs, Failure>, Error> {
        let spec = &self.cr.spec;
        let mut out = RegistryInputs::default();
        // overrideConfig wins over labels (D11); a named distribution keeps the config
        // pinned with its name in this release (FR-027d, D15).
        let direct = spec
            .distribution
            .image
            .as_deref()
            .filter(|_| spec.distribution.name.is_none() && spec.override_config.is_none());
        let externals = spec
            .external_providers
            .as_ref()
            .map(children::external::in_crd_order)
            .unwrap_or_default();
        if direct.is_none() && externals.is_empty() {
            return Ok(Ok(out));
        }
        let sa = names::pod_service_account(spec, name);
        let creds = inputs::pull_credentials(&self.ctx.client, ns, &sa).await?;
        let registry = &self.ctx.registry;
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
                Err(e) => return Ok(Err(registry_failed(&e, "spec.distribution.image", None))),
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
                        pull_policy: children::external::pull_policy(r.image_pull_policy)
                            .to_string(),
                        wheel_path: p.wheel_path.clone(),
                        dependency_wheels: p.dependency_wheels.clone(),
                    });
                }
                Err(e) => {
                    let path = format!("spec.externalProviders.{}[{i}]", field_of(api));
                    return Ok(Err(registry_failed(&e, &path, Some(r))));
                }
            }
        }
        Ok(Ok(out))
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
                last_updated: old.version.as_ref().and_then(|v| v.last_updated.clone()),
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
        let (available, _, ready, _) = status::availability(live, status::Pods::default());
        let mut conds = f.conds.clone();
        conds.push(available);
        // Keep what still holds from the last good pass.
        for keep in [
            status::DEPLOYMENT_UPDATED,
            status::PROGRESSING,
            SECRETS_RESOLVED,
        ] {
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
        let mut carried = self.carried(&old);
        if let Some(p) = f.provider {
            let mut list = carried.external_providers.take().unwrap_or_default();
            let prev = list.iter().position(|x| x.provider_id == p.provider_id);
            let p = ExternalProviderStatus {
                // The time moves only when the phase or the message changes.
                last_transition_time: prev
                    .map(|i| &list[i])
                    .filter(|x| x.phase == p.phase && x.message == p.message)
                    .and_then(|x| x.last_transition_time.clone())
                    .or(p.last_transition_time),
                ..p
            };
            match prev {
                Some(i) => list[i] = p,
                None => list.push(p),
            }
            carried.external_providers = Some(list);
        }
        let new = LlamaStackDistributionStatus {
            phase: Some(Phase::Failed),
            resolved_distribution: old.resolved_distribution.clone(),
            config_generation: old.config_generation.clone(),
            available_replicas: Some(ready),
            service_url: old.service_url.clone(),
            route_url: old.route_url.clone(),
            ..carried
        };
        self.write_status(new, &conds).await?;
        let key = format!(
            "{}/{}",
            self.cr.namespace().unwrap_or_default(),
            self.cr.name_any()
        );
        if f.retry {
            let wait = self.ctx.backoff(&key, true);
            tracing::info!(reason = %event_cond.reason, retry_in_s = wait.as_secs(), "retrying with backoff");
            return Ok(Pass {
                action: Action::requeue(wait),
                failed: true,
            });
        }
        self.ctx.backoff(&key, false);
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

/// The API server refused the Deployment (admission policy, quota, RBAC):
/// `DeploymentUpdated=False`, retried with backoff since the cluster may change, not the CR.
fn deployment_refused(name: &str, message: &str, holding: Vec<Cond>) -> Failure {
    let message = format!("The API server refused Deployment {name}: {message}");
    let mut conds = vec![Cond::new(
        status::DEPLOYMENT_UPDATED,
        false,
        "DeploymentUpdateFailed",
        message.clone(),
    )];
    conds.extend(holding);
    Failure {
        conds,
        event: ("DeploymentUpdateFailed", message),
        retry: true,
        provider: None,
    }
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
        retry: false,
        provider: None,
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

fn now() -> Time {
    Time(Timestamp::now())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
