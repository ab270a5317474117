//! Reading a LlamaStackDistribution's status and waiting for it, for the tests that run the
//! operator process.

use anyhow::{Context, Result, bail, ensure};
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::k8s_openapi::api::core::v1::ConfigMap;
use llsd_test_support::kube::api::{Api, DeleteParams, ListParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{TestNamespace, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const READY: Duration = Duration::from_secs(90);

pub fn status(o: &DynamicObject) -> &Value {
    &o.data["status"]
}

pub fn condition<'a>(o: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    status(o)["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub fn phase(o: &DynamicObject) -> &str {
    status(o)["phase"].as_str().unwrap_or("")
}

/// Polls the CR until `cond` holds (DynamicObject has no default ApiResource for wait_for).
pub async fn wait_cr(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    cond: impl Fn(&DynamicObject) -> bool,
) -> Result<DynamicObject> {
    let start = std::time::Instant::now();
    loop {
        let o = api.get_opt(name).await?;
        if let Some(o) = o.as_ref().filter(|o| cond(o)) {
            return Ok(o.clone());
        }
        if start.elapsed() > timeout {
            let seen = o
                .map(|o| serde_json::to_string_pretty(&o.data["status"]).unwrap_or_default())
                .unwrap_or_else(|| "nothing".into());
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {name}; status last seen: {seen}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn wait_phase(api: &Api<DynamicObject>, name: &str, want: &str) -> Result<DynamicObject> {
    let found = wait_cr(api, name, READY, |o| {
        phase(o) == want
            && status(o)["observedGeneration"]
                == o.metadata
                    .generation
                    .map(Value::from)
                    .unwrap_or(Value::Null)
    })
    .await;
    match found {
        Ok(o) => Ok(o),
        Err(e) => Err(e.context(workload_state(api, name).await)),
    }
}

/// The Deployment `name` and its pods as they are now, for a timeout message.
pub async fn workload_state(api: &Api<DynamicObject>, name: &str) -> String {
    use llsd_test_support::k8s_openapi::api::core::v1::Pod;
    let Some(ns) = api.namespace() else {
        return String::new();
    };
    let c = api.clone().into_client();
    let dep = Api::<Deployment>::namespaced(c.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|d| {
            format!(
                "generation {:?}, status {}",
                d.metadata.generation,
                serde_json::to_string(&d.status).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "none".into());
    let pods = Api::<Pod>::namespaced(c, ns)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|p| {
                    format!(
                        "{} node={:?} phase={:?} conditions={}",
                        p.metadata.name.as_deref().unwrap_or(""),
                        p.spec.as_ref().and_then(|s| s.node_name.clone()),
                        p.status.as_ref().and_then(|s| s.phase.clone()),
                        serde_json::to_string(&p.status.as_ref().map(|s| &s.conditions))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        })
        .unwrap_or_else(|e| e.to_string());
    format!("Deployment {name}: {dep}\npods:\n  {pods}")
}

pub fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

/// The starter distribution's config.yaml as the repository ships it.
pub const STARTER_CONFIG: &str = include_str!("../../../../configs/starter/config.yaml");

/// The generated ConfigMap the status names, and its config.yaml.
pub async fn generated_config(ns: &TestNamespace, cr: &DynamicObject) -> Result<(String, String)> {
    let name = status(cr)["configGeneration"]["configMapName"]
        .as_str()
        .context("status.configGeneration.configMapName")?
        .to_string();
    let cm = ns.api::<ConfigMap>().get(&name).await?;
    let yaml = cm
        .data
        .and_then(|mut d| d.remove("config.yaml"))
        .with_context(|| format!("config.yaml in {name}"))?;
    Ok((name, yaml))
}

/// The shipped starter config.yaml with `distro_name` set to `marker`.
pub fn starter_config(marker: &str) -> Result<String> {
    let text = STARTER_CONFIG.replacen(
        "\ndistro_name: starter\n",
        &format!("\ndistro_name: {marker}\n"),
        1,
    );
    ensure!(
        text.contains(marker),
        "configs/starter/config.yaml has no `distro_name: starter` line"
    );
    Ok(text)
}

/// Reasons of the Events recorded about CR `name` (NFR-007), waiting until `want` are all there.
pub async fn wait_events(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    name: &str,
    want: &[&str],
) -> Result<Vec<(String, String)>> {
    use llsd_test_support::k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    eventually(
        &format!("Events {want:?} about {name}"),
        Duration::from_secs(30),
        || async {
            let seen: Vec<(String, String)> = events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                .collect();
            Ok(want
                .iter()
                .all(|w| seen.iter().any(|(r, _)| r == w))
                .then_some(seen))
        },
    )
    .await
}

/// Waits until a v1alpha1 object written now reads back whole through the operator's
/// conversion; one written while the API server still used the previous settings is stored
/// unconverted, so it is deleted and written again.
pub async fn wait_converting(v1: &Api<DynamicObject>) -> Result<()> {
    let probe = super::object(
        "v1alpha1",
        "probe",
        json!({"replicas": 0, "server": {"distribution": {"name": "starter"}, "workers": 3}}),
    );
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        let created = match v1.create(&PostParams::default(), &probe).await {
            Ok(_) => "created".to_string(),
            Err(e) => format!("create: {e}"),
        };
        match v1.get("probe").await {
            Ok(o) if o.data["spec"]["server"]["workers"] == 3 => {
                v1.delete("probe", &DeleteParams::default()).await?;
                return Ok(());
            }
            Ok(o) => {
                last = format!(
                    "{created}; read back without its fields: {}",
                    o.data["spec"]
                )
            }
            Err(e) => last = format!("{created}; read: {e}"),
        }
        let _ = v1.delete("probe", &DeleteParams::default()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("v1alpha1 objects never converted through the operator; last: {last}")
}

/// The storage a PVC requests (`spec.resources.requests.storage`), as written.
pub fn pvc_request(
    pvc: &llsd_test_support::k8s_openapi::api::core::v1::PersistentVolumeClaim,
) -> Option<String> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
}
