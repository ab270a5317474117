//! Step 4: the rollout. What the config needs first (its Secrets, FR-073; the Secret derived
//! from a connection string, D9; the CA bundle, FR-063), the generated ConfigMap (D10), the
//! owned objects with the Deployment in one write (FR-100), then the pods and ReplicaSets that
//! now run, and the old generated ConfigMaps none of them mounts (FR-025a).

use super::failure::{Stop, deployment_refused, generation_failed, secrets_failed};
use super::generate::Config;
use super::registry::RegistryInputs;
use super::scope::Scope;
use crate::controller::apply::{self, Outcome};
use crate::controller::children::deployment::VOLUME_CONFIG;
use crate::controller::children::{self, Inputs, names};
use crate::controller::error::{Error, api};
use crate::controller::status::{self, Cond};
use crate::controller::{inputs, pods, prune};
use crate::settings::OperatorConfig;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::EventType;
use llama_stack_config::Generated;
use sha2::{Digest, Sha256};

/// What the rollout leaves for the status.
pub(super) struct RolledOut {
    /// The generated ConfigMap the Deployment mounts.
    pub config_map: String,
    /// Distinct (Secret, key) references resolved.
    pub secrets: usize,
    pub deployment: Deployment,
    /// This pass created the Deployment (a new server).
    pub created: bool,
    pub service: Service,
    /// The Ingress's URL, when the CR exposes the server.
    pub route_url: Option<String>,
    /// The server pods and the Deployment's ReplicaSets, as listed after the writes.
    pub pods: Vec<Pod>,
    pub sets: Vec<ReplicaSet>,
}

/// Writes what `config` needs and runs it. `live` is the Deployment as the pass found it.
pub(super) async fn roll_out(
    s: &Scope<'_>,
    settings: &OperatorConfig,
    live: Option<&Deployment>,
    config: &Config,
    registry: &RegistryInputs,
) -> Result<RolledOut, Stop> {
    let generated = &config.generated;
    let secrets = secrets(s, generated).await?;
    let ca_hash = ca_bundle(s).await?;
    let (config_map, new_config) = generated_config(s, generated).await?;
    let inputs = Inputs {
        cr: s.cr,
        image: &config.image,
        config_map: &config_map,
        config_hash: &generated.content_hash,
        secret_env: &generated.env,
        ca_bundle_hash: ca_hash.as_deref(),
        operator_namespace: &s.ctx.operator_namespace,
        network_policy_enabled: settings.network_policy,
        ingress_domain: settings.ingress_domain.as_deref(),
        external: &registry.installs,
    };
    // Should the API server refuse the Deployment, these still hold.
    let holding = vec![
        status::config_generated(generated.provider_count, generated.resource_count),
        status::secrets_resolved(secrets),
    ];
    let owned = owned_objects(s, &inputs, live, holding).await?;
    if let Some((reason, note)) = change_event(
        owned.outcome,
        new_config,
        (generated.provider_count, generated.resource_count),
        &inputs,
        &names::deployment(&s.name),
    ) {
        s.event(EventType::Normal, reason, note).await;
    }
    let (pods, sets) = server_pods(s).await?;
    let in_use = in_use(&config_map, live, &sets);
    let in_use: Vec<&str> = in_use.iter().map(String::as_str).collect();
    prune(s, &in_use).await?;
    Ok(RolledOut {
        config_map,
        secrets,
        deployment: owned.deployment,
        created: owned.outcome == Outcome::Created,
        service: owned.service,
        route_url: owned.route_url,
        pods,
        sets,
    })
}

/// Checks that every Secret and key the config references exists and writes the Secrets
/// derived from a connection string. Returns how many references resolved.
async fn secrets(s: &Scope<'_>, generated: &Generated) -> Result<usize, Stop> {
    let api = s.api::<Secret>();
    let check = inputs::secrets(&api, &s.ns, &generated.env, &generated.derived_secrets).await?;
    if let Some(p) = check.problem {
        return Err(secrets_failed(p).into());
    }
    for mut derived in check.derived {
        derived.metadata.namespace = Some(s.ns.clone());
        derived.metadata.labels = Some(children::common_labels(&s.name, "storage-secret"));
        derived.metadata.owner_references = s.cr.controller_owner_ref(&()).map(|o| vec![o]);
        let (outcome, _) = s.write(&api, derived, false, "Secret").await?;
        // Said when the derived Secret changes, not on every pass.
        if outcome != Outcome::Unchanged {
            for w in &check.warnings {
                s.event(
                    EventType::Warning,
                    "ConnectionStringParametersIgnored",
                    w.clone(),
                )
                .await;
            }
        }
    }
    Ok(check.count)
}

/// The CA bundle's certificates, copied next to the CR; returns their sha256 (the pods roll
/// when it changes). Without a caBundle, a copy left from before goes.
async fn ca_bundle(s: &Scope<'_>) -> Result<Option<String>, Stop> {
    let configmaps = s.api::<ConfigMap>();
    let bundle =
        s.cr.spec
            .networking
            .as_ref()
            .and_then(|n| n.tls.as_ref())
            .and_then(|t| t.ca_bundle.as_ref());
    let Some(bundle) = bundle else {
        s.remove(&configmaps, &names::ca_bundle(&s.name)).await?;
        return Ok(None);
    };
    match inputs::ca_bundle(&s.ctx.client, &s.ns, bundle).await? {
        Ok(pem) => {
            let hash = children::hex(&Sha256::digest(pem.as_bytes()));
            let cm = children::config_map::ca_bundle_config_map(s.cr, &pem)?;
            s.write_cached(&configmaps, cm, false, "ConfigMap").await?;
            Ok(Some(hash))
        }
        Err(p) => Err(generation_failed(&p.message).into()),
    }
}

/// The generated ConfigMap (D10): immutable, so created once and never updated. Returns its
/// name and whether this pass created it.
async fn generated_config(s: &Scope<'_>, generated: &Generated) -> Result<(String, bool), Error> {
    let configmaps = s.api::<ConfigMap>();
    let ns = &s.ns;
    let cm_name = names::generated_config(&s.name, &generated.content_hash);
    let mut created = false;
    // Immutable: present in the cache means written. Absent may be a cache that has not yet
    // seen it: the API server decides.
    let cached = s.caches.get::<ConfigMap>(ns, &cm_name).is_some();
    if !cached
        && configmaps
            .get_opt(&cm_name)
            .await
            .map_err(api("read", format!("ConfigMap {ns}/{cm_name}")))?
            .is_none()
    {
        let cm =
            children::config_map::generated_config_map(s.cr, &cm_name, &generated.config_yaml)?;
        match configmaps.create(&PostParams::default(), &cm).await {
            Ok(_) => {
                s.ctx.metrics.wrote("ConfigMap");
                created = true;
                tracing::info!(configmap = %cm_name, "generated config written");
            }
            Err(kube::Error::Api(st)) if st.code == 409 => {}
            Err(e) => return Err(api("create", format!("ConfigMap {ns}/{cm_name}"))(e)),
        }
    }
    if created && !generated.warnings.is_empty() {
        s.event(
            EventType::Warning,
            "ConfigWarnings",
            generated.warnings.join("; "),
        )
        .await;
    }
    Ok((cm_name, created))
}

/// The Normal Event of a pass: one per change of a running server, none for a new one (its
/// status conditions say the same, and its first pass stays within 6 writes; issue 18).
fn change_event(
    outcome: Outcome,
    new_config: bool,
    counts: (u32, u32),
    inputs: &Inputs<'_>,
    deployment: &str,
) -> Option<(&'static str, String)> {
    let rollout = format!(
        "Deployment {deployment} runs {} with config {}",
        inputs.image, inputs.config_map
    );
    match (outcome, new_config) {
        (Outcome::Created, _) | (Outcome::Unchanged, false) => None,
        (_, true) => Some((
            "ConfigGenerated",
            format!(
                "Generated config.yaml in ConfigMap {}: {} providers, {} resources. {rollout}",
                inputs.config_map, counts.0, counts.1
            ),
        )),
        (Outcome::Updated, false) => Some(("DeploymentUpdated", rollout)),
    }
}

/// What the owned objects' writes return that the status needs.
struct Owned {
    deployment: Deployment,
    outcome: Outcome,
    service: Service,
    route_url: Option<String>,
}

/// The objects `inputs` decide, each written only when it changed and removed when the CR
/// no longer wants it. A refused Deployment leaves the running pods as they are (FR-097) and
/// says who refused what, next to the `holding` conditions.
async fn owned_objects(
    s: &Scope<'_>,
    inputs: &Inputs<'_>,
    live: Option<&Deployment>,
    holding: Vec<Cond>,
) -> Result<Owned, Stop> {
    let name = &s.name;
    s.write_cached(
        &s.api::<ServiceAccount>(),
        children::service_account::service_account(inputs)?,
        false,
        "ServiceAccount",
    )
    .await?;
    let (_, service) = s
        .write(
            &s.api::<Service>(),
            children::service::service(inputs)?,
            false,
            "Service",
        )
        .await?;
    if let Some(pvc) = children::pvc::pvc(inputs)? {
        s.write_cached(
            &s.api::<PersistentVolumeClaim>(),
            pvc,
            true,
            "PersistentVolumeClaim",
        )
        .await?;
    }
    // The Deployment read at the start of this pass is the live one: no second GET.
    let (outcome, deployment) = match apply::ensure_against(
        s.ctx,
        &s.api::<Deployment>(),
        children::deployment::deployment(inputs)?,
        false,
        live.cloned(),
    )
    .await
    {
        Ok(written) => written,
        Err(e) => match e.refusal() {
            Some(message) => {
                return Err(deployment_refused(&names::deployment(name), message, holding).into());
            }
            None => return Err(e.into()),
        },
    };
    if outcome != Outcome::Unchanged {
        s.ctx.metrics.wrote("Deployment");
    }
    s.write_or_remove(
        children::pdb::pdb(inputs)?,
        &names::pdb(name),
        "PodDisruptionBudget",
    )
    .await?;
    s.write_or_remove(
        children::hpa::hpa(inputs)?,
        &names::hpa(name),
        "HorizontalPodAutoscaler",
    )
    .await?;
    s.write_or_remove(
        children::network_policy::network_policy(inputs)?,
        &names::network_policy(name),
        "NetworkPolicy",
    )
    .await?;
    let ingresses = s.api::<Ingress>();
    let route_url = match children::ingress::ingress(inputs)? {
        Some(o) => {
            let (_, live) = s.write(&ingresses, o, false, "Ingress").await?;
            Some(children::ingress::route_url(&live).unwrap_or_default())
        }
        None => {
            s.remove(&ingresses, &names::ingress(name)).await?;
            None
        }
    };
    Ok(Owned {
        deployment,
        outcome,
        service,
        route_url,
    })
}

/// The server pods of the CR and the ReplicaSets of its Deployment (by the Deployment's
/// selector labels).
async fn server_pods(s: &Scope<'_>) -> Result<(Vec<Pod>, Vec<ReplicaSet>), Error> {
    let (ns, name) = (&s.ns, &s.name);
    let selector = children::selector_labels(name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let lp = ListParams::default().labels(&selector);
    let pods = s
        .api::<Pod>()
        .list(&lp)
        .await
        .map_err(api("list", format!("pods of {ns}/{name}")))?;
    let sets = s
        .api::<ReplicaSet>()
        .list(&lp)
        .await
        .map_err(api("list", format!("ReplicaSets of {ns}/{name}")))?;
    Ok((pods.items, sets.items))
}

/// The generated ConfigMaps that must stay: the one just rolled out, the one the Deployment
/// mounted before this pass, and every one a ReplicaSet's pods may still mount.
fn in_use(config_map: &str, live: Option<&Deployment>, sets: &[ReplicaSet]) -> Vec<String> {
    let mut out = vec![config_map.to_string()];
    out.extend(
        live.and_then(|d| pods::mounted_config(Some(&d.spec.as_ref()?.template), VOLUME_CONFIG)),
    );
    out.extend(pods::configs_in_use(sets, VOLUME_CONFIG));
    out
}

/// Deletes the CR's old generated ConfigMaps (FR-025a), never one in `in_use`.
async fn prune(s: &Scope<'_>, in_use: &[&str]) -> Result<(), Error> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let (name, uid) = (&s.name, &s.uid);
    let configmaps = s.api::<ConfigMap>();
    let generated = |meta: &ObjectMeta| {
        let labels = meta.labels.as_ref();
        let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        label("app.kubernetes.io/instance") == Some(name.as_str())
            && label("app.kubernetes.io/component") == Some("generated-config")
            && label("app.kubernetes.io/managed-by") == Some(children::MANAGER)
    };
    let metas: Vec<ObjectMeta> = s
        .caches
        .in_namespace::<ConfigMap>(&s.ns)
        .into_iter()
        .map(|c| c.metadata.clone())
        .filter(generated)
        .collect();
    let ours: Vec<ConfigMap> = metas
        .into_iter()
        .filter(|m| m.owner_references.iter().flatten().any(|o| o.uid == *uid))
        .map(|metadata| ConfigMap {
            metadata,
            ..Default::default()
        })
        .collect();
    for old in prune::to_delete(&ours, in_use) {
        if s.remove(&configmaps, &old).await? {
            s.ctx.metrics.wrote("ConfigMap");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::children::testing::{self, minimal};
    use k8s_openapi::api::apps::v1::{ReplicaSetSpec, ReplicaSetStatus};

    /// A ReplicaSet with `replicas` pods that mount `config_map`, as the Deployment builder
    /// writes it.
    fn set_mounting(config_map: &str, replicas: i32) -> ReplicaSet {
        let cr = minimal();
        let dep = children::deployment::deployment(&Inputs {
            config_map,
            ..testing::inputs(&cr)
        })
        .expect("builds");
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                template: dep.spec.map(|s| s.template),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn configs_in_use_are_the_new_the_previously_mounted_and_the_replica_sets_ones() {
        let cr = minimal();
        let live = children::deployment::deployment(&testing::inputs(&cr)).expect("builds");
        // A scaled-down ReplicaSet has no pods left to read its config.
        let sets = [
            set_mounting("demo-config-old", 1),
            set_mounting("demo-config-older", 0),
        ];
        assert_eq!(
            in_use("demo-config-new", Some(&live), &sets),
            vec!["demo-config-new", testing::CONFIG_MAP, "demo-config-old"]
        );
        // First pass: nothing runs yet, only the new config is kept for sure.
        assert_eq!(
            in_use("demo-config-new", None, &[]),
            vec!["demo-config-new"]
        );
    }

    #[test]
    fn a_new_server_has_no_normal_event_and_a_change_has_one() {
        let cr = minimal();
        let inputs = testing::inputs(&cr);
        let event = |outcome, new_config| {
            change_event(outcome, new_config, (3, 2), &inputs, "x").map(|(r, _)| r)
        };
        assert_eq!(event(Outcome::Created, true), None);
        assert_eq!(event(Outcome::Unchanged, false), None);
        assert_eq!(event(Outcome::Updated, true), Some("ConfigGenerated"));
        assert_eq!(event(Outcome::Updated, false), Some("DeploymentUpdated"));
        // A new config whose Deployment write was a no-op (someone else's edit) still says so.
        assert_eq!(event(Outcome::Unchanged, true), Some("ConfigGenerated"));
        let (_, note) = change_event(Outcome::Updated, true, (3, 2), &inputs, "x")
            .expect("an event for a new config");
        assert!(
            note.contains("3 providers, 2 resources") && note.contains("Deployment x runs"),
            "{note}"
        );
    }
}
