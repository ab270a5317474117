//! Step 5: the status (§9), written only when it differs from the stored one: an unchanged
//! world costs no write (FR-096). After a rollout ([`rolled_out`]): what the Deployment and its
//! pods say (issue 17), each external provider's install (spec 001 FR-028) and what the server
//! reports about itself (its follower's latest answer, `servers.rs`). After a stop
//! ([`failed`]): the failure, next to what still holds from the last good pass.

use super::failure::Failure;
use super::generate::Config;
use super::registry::RegistryInputs;
use super::rollout::RolledOut;
use super::scope::{Pass, Scope, now};
use crate::api::shared::{DistributionConfig, Phase, VersionInfo};
use crate::api::v1alpha2::{
    ConfigGeneration, DEFAULT_PORT, ExternalProviderStatus, LlamaStackDistribution,
    LlamaStackDistributionStatus, ResolvedDistribution,
};
use crate::controller::children::{self, external, names};
use crate::controller::error::{Error, api};
use crate::controller::servers::Answer;
use crate::controller::status::{self, Cond, SECRETS_RESOLVED};
use crate::controller::{RESYNC, pods, server_info};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use llama_stack_config::Generated;
use std::collections::BTreeMap;

/// How long the first status of a new server waits for its Deployment's status.
const FIRST_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a new CR's first status waits at most for its server's first pod.
const FIRST_STATUS_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// The next pass of a Ready server whose first answer is still out, should its arrival not
/// bring one (two requests of at most 5 s each).
const FIRST_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(12);

/// Writes the status of a pass that rolled out `config`. A Ready server's answers come from its
/// follower, which brings a pass when they change: no pass each minute to ask.
pub(super) async fn rolled_out(
    s: &Scope<'_>,
    config: &Config,
    registry: &RegistryInputs,
    r: RolledOut,
) -> Result<Pass, Error> {
    let ctx = s.ctx;
    let spec = &s.cr.spec;
    let (ns, name) = (&s.ns, &s.name);
    let generated = &config.generated;

    // What the pods do, and which of them run this config (issue 17).
    let template = pods::current_template_hash(&r.deployment, &r.sets);
    let new_problem = template.as_deref().and_then(|h| {
        r.pods
            .iter()
            .filter(|p| pods::runs_template(p, h))
            .find_map(pods::problem)
    });
    let any_problem = r.pods.iter().find_map(pods::problem);
    let (available, progressing, ready, phase) = status::availability(
        Some(&r.deployment),
        status::Pods {
            new_problem: new_problem.as_ref(),
            any_problem: any_problem.as_ref(),
        },
    );
    // The Deployment's status has not counted the new pods yet ("0/1 updated" while the pod
    // exists): the next Deployment event says more, within moments.
    let catching_up = progressing.reason == "RolloutInProgress";
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
    let old = s.cr.status.clone().unwrap_or_default();
    // What the server says (issue 17): its follower's latest answer. A new server's first
    // answer is awaited before anything is written, so that Ready and the answers go out in
    // one status write; if it is slow, its arrival brings the next pass (servers.rs).
    let mut carried = carried(s, &old);
    let cr_ref = ObjectRef::from_obj(s.cr);
    let server = if phase == Phase::Ready {
        let answer = match server_target(s, &r.service, port).await? {
            Ok(target) => ctx.servers.answer(cr_ref, &r.config_map, target).await,
            Err(message) => {
                ctx.servers.forget(&cr_ref);
                Answer::Known(Err(message))
            }
        };
        match answer {
            Answer::Known(read) => Some(server_info::apply(read, &mut carried, now())),
            Answer::Pending => {
                return Ok(Pass {
                    action: Action::requeue(FIRST_ANSWER_WAIT),
                    failed: false,
                });
            }
        }
    } else {
        ctx.servers.forget(&cr_ref);
        None
    };
    let generated_at = generated_at(&old, &r.config_map).unwrap_or_else(now);
    // Each provider's install state, from the newest pod.
    let external_providers = if registry.installs.is_empty() {
        None
    } else {
        let pod = r
            .pods
            .iter()
            .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        let previous = old.external_providers.as_deref().unwrap_or_default();
        let statuses = external::provider_statuses(&registry.installs, pod, previous, now());
        for (type_, reason, note) in provider_events(previous, &statuses) {
            s.event(type_, reason, note).await;
        }
        Some(statuses)
    };
    let old_conds = old.conditions.clone().unwrap_or_default();
    if status::stalled(&old_conds, &progressing) {
        s.event(
            EventType::Warning,
            status::NEW_CONFIG_NOT_READY,
            progressing.message.clone(),
        )
        .await;
    }
    let mut conds = vec![
        status::config_generated(generated.provider_count, generated.resource_count),
        status::deployment_updated(&r.config_map),
        available,
        progressing,
        status::secrets_resolved(r.secrets),
    ];
    conds.extend(server);
    let new = LlamaStackDistributionStatus {
        phase: Some(phase),
        resolved_distribution: Some(resolved(s.cr, config)),
        config_generation: Some(config_generation(&r.config_map, generated_at, generated)),
        available_replicas: Some(ready),
        service_url: Some(service_url(name, ns, port, tls)),
        route_url: r.route_url.clone(),
        external_providers,
        ..carried
    };
    ctx.backoff(&s.key(), false);
    let age =
        s.cr.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| now().0.duration_since(t.0).as_secs());
    if first_status_waits(r.created, old.phase.is_some(), &r, catching_up, age) {
        return Ok(Pass {
            action: Action::requeue(FIRST_STATUS_WAIT),
            failed: false,
        });
    }
    write_status(s, new, &conds).await?;
    Ok(Pass {
        action: Action::requeue(RESYNC),
        failed: false,
    })
}

/// Whether a new server's first status waits for a later pass: the Deployment was created
/// this pass (it has no status yet), its ReplicaSet has not made a pod yet, or its status
/// does not count the pods yet (`catching_up`: "0/1 updated" while the pod exists). Such a status
/// says nothing a user could act on, the Deployment's status and the pod's creation bring the
/// next pass within moments, and each one was one more write per new CR (issue 18). The
/// requeue covers a controller-manager that does not answer; the wait ends when the Deployment
/// reports a ReplicaFailure (a quota, a refused pod) or the CR is [`FIRST_STATUS_MAX`] old.
fn first_status_waits(
    created: bool,
    has_status: bool,
    r: &RolledOut,
    catching_up: bool,
    age: Option<i64>,
) -> bool {
    if created {
        return true;
    }
    let replica_failure = r
        .deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        });
    !has_status
        && (r.pods.is_empty() || catching_up)
        && !replica_failure
        && age.is_some_and(|a| a < FIRST_STATUS_MAX.as_secs() as i64)
}

/// Where the server listens: its Service's ClusterIP; with TLS, the Secret's CA (or its
/// certificate) to verify it with. `Err` says why it cannot be reached.
async fn server_target(
    s: &Scope<'_>,
    service: &Service,
    port: i32,
) -> Result<Result<server_info::Target, String>, Error> {
    let ns = &s.ns;
    let mut target = match server_info::Target::of_service(service, ns, port) {
        Ok(t) => t,
        Err(message) => return Ok(Err(message)),
    };
    if let Some(secret) = children::server_tls(s.cr).and_then(|t| t.secret_name.as_deref()) {
        let data = s
            .api::<Secret>()
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

/// When the config in `config_map` was generated: kept from the stored status while that
/// ConfigMap is still the one in use.
fn generated_at(old: &LlamaStackDistributionStatus, config_map: &str) -> Option<Time> {
    old.config_generation
        .as_ref()
        .filter(|g| g.config_map_name.as_deref() == Some(config_map))
        .and_then(|g| g.generated_at.clone())
}

fn resolved(cr: &LlamaStackDistribution, config: &Config) -> ResolvedDistribution {
    let d = &config.generated.distribution;
    ResolvedDistribution {
        name: cr.spec.distribution.name.clone(),
        image: Some(config.image.clone()),
        config_source: serde_json::to_value(d.config_source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        config_hash: Some(format!("sha256:{}", d.base_config_hash)),
    }
}

fn config_generation(
    config_map: &str,
    generated_at: Time,
    generated: &Generated,
) -> ConfigGeneration {
    ConfigGeneration {
        config_map_name: Some(config_map.to_string()),
        generated_at: Some(generated_at),
        provider_count: Some(generated.provider_count as i32),
        resource_count: Some(generated.resource_count as i32),
        config_version: Some(generated.config_version as i32),
    }
}

/// The in-cluster URL of the server.
fn service_url(name: &str, ns: &str, port: i32, tls: bool) -> String {
    format!(
        "{}://{}.{ns}.svc.cluster.local:{port}",
        if tls { "https" } else { "http" },
        names::service(name)
    )
}

/// One Event per provider whose install settled since the stored status (spec 001
/// FR-028..030): Normal when it is Ready, Warning when it Failed.
fn provider_events(
    previous: &[ExternalProviderStatus],
    statuses: &[ExternalProviderStatus],
) -> Vec<(EventType, &'static str, String)> {
    let mut out = Vec::new();
    for s in statuses {
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
            Some("Ready") => out.push((EventType::Normal, "ExternalProviderInstalled", note)),
            Some("Failed") => out.push((EventType::Warning, "ExternalProviderFailed", note)),
            _ => {}
        }
    }
    out
}

/// Writes the status of a pass that stopped with `f` (FR-097): the Deployment `live` stays as
/// it is, the phase is Failed, the failed condition gets one Warning Event per transition and
/// Available still tells the truth about the running pods (D12).
pub(super) async fn failed(
    s: &Scope<'_>,
    live: Option<&Deployment>,
    f: Failure,
) -> Result<Pass, Error> {
    let old = s.cr.status.clone().unwrap_or_default();
    let old_conds = old.conditions.clone().unwrap_or_default();
    let event_cond = f.conds[0].clone();
    if status::changed(&old_conds, &event_cond) {
        s.event(EventType::Warning, f.event.0, f.event.1.clone())
            .await;
    }
    let retry = f.retry;
    let base = carried(s, &old);
    let (new, conds) = failed_status(&old, f, live, base);
    write_status(s, new, &conds).await?;
    let key = s.key();
    if retry {
        let wait = s.ctx.backoff(&key, true);
        tracing::info!(reason = %event_cond.reason, retry_in_s = wait.as_secs(), "retrying with backoff");
        return Ok(Pass {
            action: Action::requeue(wait),
            failed: true,
        });
    }
    s.ctx.backoff(&key, false);
    tracing::info!(reason = %event_cond.reason, "reconcile stopped before the Deployment: waiting for a change");
    Ok(Pass {
        action: Action::await_change(),
        failed: true,
    })
}

/// The status after `f`, from the stored one (`old`) and the fields every pass carries: phase
/// Failed, what still holds from the last good pass kept, the provider's entry updated.
fn failed_status(
    old: &LlamaStackDistributionStatus,
    f: Failure,
    live: Option<&Deployment>,
    mut carried: LlamaStackDistributionStatus,
) -> (LlamaStackDistributionStatus, Vec<Cond>) {
    let old_conds = old.conditions.clone().unwrap_or_default();
    let (available, _, ready, _) = status::availability(live, status::Pods::default());
    let mut conds = f.conds;
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
    (new, conds)
}

/// Status fields that survive every pass, failed or not: versions and the distribution
/// registry.
pub(super) fn carried(
    s: &Scope<'_>,
    old: &LlamaStackDistributionStatus,
) -> LlamaStackDistributionStatus {
    let distributions = s.ctx.plugins.builtin().info().map(|i| {
        i.distributions
            .iter()
            .map(|d| (d.name.clone(), d.image.clone()))
            .collect()
    });
    carry(s.cr, old, &s.ctx.operator_version, distributions)
}

/// [`carried`] with the operator's version and the distributions it knows given.
fn carry(
    cr: &LlamaStackDistribution,
    old: &LlamaStackDistributionStatus,
    operator_version: &str,
    distributions: Option<BTreeMap<String, String>>,
) -> LlamaStackDistributionStatus {
    LlamaStackDistributionStatus {
        external_providers: old.external_providers.clone(),
        version: Some(VersionInfo {
            operator_version: Some(operator_version.to_string()),
            llama_stack_server_version: old
                .version
                .as_ref()
                .and_then(|v| v.llama_stack_server_version.clone()),
            last_updated: old.version.as_ref().and_then(|v| v.last_updated.clone()),
        }),
        distribution_config: Some(DistributionConfig {
            active_distribution: Some(
                cr.spec
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

/// Applies the status when it differs from the stored one (no write for a no-op pass).
pub(super) async fn write_status(
    s: &Scope<'_>,
    new: LlamaStackDistributionStatus,
    conds: &[Cond],
) -> Result<(), Error> {
    let Some(new) = next_status(s.cr, new, conds, &now()) else {
        return Ok(());
    };
    let (ns, name) = (&s.ns, &s.name);
    let body = serde_json::json!({
        "apiVersion": "llamastack.io/v1alpha2",
        "kind": "LlamaStackDistribution",
        "status": new,
    });
    s.api::<LlamaStackDistribution>()
        .patch_status(
            name,
            &PatchParams::apply(children::MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(api(
            "write the status of",
            format!("LlamaStackDistribution {ns}/{name}"),
        ))?;
    s.ctx.metrics.wrote("LlamaStackDistribution/status");
    tracing::info!(phase = ?new.phase, "status written");
    Ok(())
}

/// `new` with its conditions merged into the stored ones and the generation it describes;
/// `None` when that is the stored status.
fn next_status(
    cr: &LlamaStackDistribution,
    mut new: LlamaStackDistributionStatus,
    conds: &[Cond],
    now: &Time,
) -> Option<LlamaStackDistributionStatus> {
    let old = cr.status.clone().unwrap_or_default();
    let old_conds = old.conditions.clone().unwrap_or_default();
    new.observed_generation = cr.metadata.generation;
    new.conditions = Some(status::merge(
        &old_conds,
        conds,
        cr.metadata.generation,
        now,
    ));
    (new != old).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::children::testing::cr;
    use crate::controller::reconcile::failure::{deployment_refused, generation_failed};
    use crate::controller::status::{AVAILABLE, CONFIG_GENERATED, DEPLOYMENT_UPDATED, PROGRESSING};
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid"))
    }

    fn rolled_out_with(pods: usize, replica_failure: bool) -> RolledOut {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "demo"},
            "status": {"conditions": if replica_failure {
                json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}])
            } else {
                json!([])
            }},
        }))
        .expect("a Deployment");
        RolledOut {
            config_map: "demo-config-1".into(),
            secrets: 0,
            deployment,
            created: false,
            service: Default::default(),
            route_url: None,
            pods: vec![Default::default(); pods],
            sets: Vec::new(),
        }
    }

    #[test]
    fn a_new_servers_first_status_waits_for_its_first_pod_within_bounds() {
        let none = rolled_out_with(0, false);
        let one = rolled_out_with(1, false);
        // Created this pass: always waits for the Deployment's status.
        assert!(first_status_waits(true, false, &none, false, Some(0)));
        // No pod yet, young CR, no status yet: waits.
        assert!(first_status_waits(false, false, &none, false, Some(1)));
        // A pod exists but the Deployment's status has not counted it yet: waits.
        assert!(first_status_waits(false, false, &one, true, Some(1)));
        // A pod exists and is counted (even one that cannot be scheduled): written.
        assert!(!first_status_waits(false, false, &one, false, Some(1)));
        // The ReplicaSet cannot make pods (quota, admission): written at once.
        let refused = rolled_out_with(0, true);
        assert!(!first_status_waits(false, false, &refused, false, Some(1)));
        assert!(!first_status_waits(false, false, &refused, true, Some(1)));
        // Bounded in time, and only the first status waits.
        assert!(!first_status_waits(false, false, &none, false, Some(10)));
        assert!(!first_status_waits(false, false, &one, true, Some(10)));
        assert!(!first_status_waits(false, false, &none, false, None));
        assert!(!first_status_waits(false, true, &none, false, Some(1)));
        assert!(!first_status_waits(false, true, &one, true, Some(1)));
    }

    #[test]
    fn an_unchanged_status_is_not_written_again() {
        let mut c = cr(json!({"distribution": {"name": "starter"}}));
        c.metadata.generation = Some(3);
        let new = LlamaStackDistributionStatus {
            phase: Some(Phase::Ready),
            ..Default::default()
        };
        let conds = [status::deployment_updated("demo-config-1")];
        let first = next_status(&c, new.clone(), &conds, &at(100)).expect("a first write");
        assert_eq!(first.observed_generation, Some(3));
        c.status = Some(first);
        // The next pass finds the same world later: nothing to write, the time does not move.
        assert_eq!(next_status(&c, new.clone(), &conds, &at(200)), None);
        // Another message is written, and keeps the transition time (the status did not flip).
        let other = [status::deployment_updated("demo-config-2")];
        let second = next_status(&c, new, &other, &at(300)).expect("a change");
        let conditions = second.conditions.expect("conditions");
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert_eq!(
            conditions[0].message,
            "Deployment updated with config demo-config-2"
        );
    }

    #[test]
    fn generated_at_stays_while_the_config_map_does() {
        let old: LlamaStackDistributionStatus = serde_json::from_value(json!({
            "configGeneration": {"configMapName": "demo-config-1", "generatedAt": "2025-01-01T00:00:00Z"}
        }))
        .expect("parses");
        assert!(generated_at(&old, "demo-config-1").is_some());
        assert_eq!(generated_at(&old, "demo-config-2"), None);
        assert_eq!(generated_at(&Default::default(), "demo-config-1"), None);
    }

    #[test]
    fn the_service_url_follows_tls_and_port() {
        assert_eq!(
            service_url("demo", "team", 8321, false),
            "http://demo-service.team.svc.cluster.local:8321"
        );
        assert_eq!(
            service_url("demo", "team", 443, true),
            "https://demo-service.team.svc.cluster.local:443"
        );
    }

    fn provider(phase: &str) -> ExternalProviderStatus {
        ExternalProviderStatus {
            provider_id: "acme".into(),
            phase: Some(phase.into()),
            message: Some("installed acme-1.0.whl".into()),
            ..Default::default()
        }
    }

    #[test]
    fn provider_events_are_published_when_an_install_settles() {
        let events = provider_events(&[provider("Installing")], &[provider("Ready")]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, EventType::Normal);
        assert_eq!(events[0].1, "ExternalProviderInstalled");
        assert_eq!(
            events[0].2,
            "external provider acme: installed acme-1.0.whl"
        );
        let events = provider_events(&[], &[provider("Failed")]);
        assert_eq!(
            (events[0].0, events[0].1),
            (EventType::Warning, "ExternalProviderFailed")
        );
        // Unchanged, or not settled yet: nothing to say.
        assert!(provider_events(&[provider("Ready")], &[provider("Ready")]).is_empty());
        assert!(provider_events(&[], &[provider("Installing")]).is_empty());
    }

    #[test]
    fn carried_fields_keep_the_servers_answers_and_name_the_distribution() {
        let old: LlamaStackDistributionStatus = serde_json::from_value(json!({
            "phase": "Ready",
            "version": {"operatorVersion": "0.1.0", "llamaStackServerVersion": "0.3.0",
                "lastUpdated": "2025-01-01T00:00:00Z"},
            "distributionConfig": {"activeDistribution": "old",
                "providers": [{"api": "inference", "provider_id": "vllm", "provider_type": "remote::vllm",
                    "config": {}, "health": {"status": "OK", "message": ""}}]},
        }))
        .expect("parses");
        let direct = cr(json!({"distribution": {"image": "quay.io/acme/stack:1"}}));
        let known = BTreeMap::from([("starter".to_string(), "img".to_string())]);
        let c = carry(&direct, &old, "0.2.0", Some(known.clone()));
        let version = c.version.expect("version");
        assert_eq!(version.operator_version.as_deref(), Some("0.2.0"));
        assert_eq!(version.llama_stack_server_version.as_deref(), Some("0.3.0"));
        assert!(version.last_updated.is_some());
        let d = c.distribution_config.expect("distributionConfig");
        assert_eq!(d.active_distribution.as_deref(), Some("custom"));
        assert_eq!(d.providers.map(|p| p.len()), Some(1));
        assert_eq!(d.available_distributions, Some(known));
        // What each pass decides anew is not carried.
        assert_eq!(c.phase, None);
        assert_eq!(c.conditions, None);
    }

    fn stored(value: serde_json::Value) -> LlamaStackDistributionStatus {
        serde_json::from_value(value).expect("status parses")
    }

    fn cond<'a>(conds: &'a [Cond], type_: &str) -> Option<&'a Cond> {
        conds.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn a_failure_keeps_what_the_last_good_pass_established() {
        let old = stored(json!({
            "phase": "Ready",
            "conditions": [
                {"type": "DeploymentUpdated", "status": "True", "reason": "DeploymentUpdateSucceeded",
                 "message": "Deployment updated with config demo-config-1", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Progressing", "status": "True", "reason": "RolloutComplete",
                 "message": "1/1 replicas run the current config", "lastTransitionTime": "2025-01-01T00:00:00Z"},
            ],
            "resolvedDistribution": {"image": "img:1"},
            "configGeneration": {"configMapName": "demo-config-1"},
            "serviceURL": "http://demo-service.team.svc.cluster.local:8321",
        }));
        let (new, conds) = failed_status(&old, generation_failed("boom"), None, Default::default());
        assert_eq!(new.phase, Some(Phase::Failed));
        // The running config and where to reach it do not change with a failed pass.
        assert_eq!(new.resolved_distribution, old.resolved_distribution);
        assert_eq!(new.config_generation, old.config_generation);
        assert_eq!(new.service_url, old.service_url);
        assert_eq!(new.available_replicas, Some(0));
        assert_eq!(conds[0].type_, CONFIG_GENERATED);
        assert!(!conds[0].ok);
        let available = cond(&conds, AVAILABLE).expect("Available says what runs");
        assert!(!available.ok);
        let kept = cond(&conds, DEPLOYMENT_UPDATED).expect("kept");
        assert!(kept.ok);
        assert_eq!(kept.message, "Deployment updated with config demo-config-1");
        assert!(cond(&conds, PROGRESSING).is_some_and(|c| c.reason == "RolloutComplete"));
        // Nothing old to keep for SecretsResolved.
        assert!(cond(&conds, SECRETS_RESOLVED).is_none());

        // A condition the failure sets itself is not overwritten by the old one.
        let (_, conds) = failed_status(
            &old,
            deployment_refused("demo", "denied", Vec::new()),
            None,
            Default::default(),
        );
        let updated: Vec<&Cond> = conds
            .iter()
            .filter(|c| c.type_ == DEPLOYMENT_UPDATED)
            .collect();
        assert_eq!(updated.len(), 1);
        assert!(!updated[0].ok);
    }

    #[test]
    fn a_failed_providers_time_moves_only_when_its_state_does() {
        let then = Time(Timestamp::from_second(1_700_000_000).expect("valid"));
        let later = Time(Timestamp::from_second(1_800_000_000).expect("valid"));
        let entry = |message: &str, at: &Time| ExternalProviderStatus {
            provider_id: "acme".into(),
            phase: Some("Failed".into()),
            message: Some(message.into()),
            last_transition_time: Some(at.clone()),
            ..Default::default()
        };
        let carried = |list: Vec<ExternalProviderStatus>| LlamaStackDistributionStatus {
            external_providers: Some(list),
            ..Default::default()
        };
        let with = |p: ExternalProviderStatus| Failure {
            provider: Some(p),
            ..generation_failed("x")
        };
        let old = LlamaStackDistributionStatus::default();

        let (new, _) = failed_status(
            &old,
            with(entry("unreachable", &later)),
            None,
            carried(vec![entry("unreachable", &then)]),
        );
        let list = new.external_providers.expect("listed");
        assert_eq!(list.len(), 1, "replaced, not appended");
        assert_eq!(list[0].last_transition_time, Some(then.clone()));

        let (new, _) = failed_status(
            &old,
            with(entry("not found", &later)),
            None,
            carried(vec![entry("unreachable", &then)]),
        );
        let list = new.external_providers.expect("listed");
        assert_eq!(list[0].message.as_deref(), Some("not found"));
        assert_eq!(list[0].last_transition_time, Some(later));
    }
}
