//! Issue 7: the operator process as platform teams run it: leader election across replicas,
//! and the Secret it derives from a postgres connection string (D9).

use anyhow::{Context, Result, ensure};
use llama_stack_operator::api::crd;
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::k8s_openapi::api::coordination::v1::Lease;
use llsd_test_support::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use llsd_test_support::kube::api::{Api, Patch, PatchParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{TestNamespace, client, eventually};
use serde_json::{Value, json};
use std::time::Duration;

mod common;
use common::cr::wait_events;
use common::operator::Operator;
use common::{llsd_api, object};

const READY: Duration = Duration::from_secs(90);

async fn phase_ready_at(
    api: &Api<DynamicObject>,
    name: &str,
    generation: i64,
) -> Result<DynamicObject> {
    eventually(
        &format!("{name} Ready at generation {generation}"),
        READY,
        || async {
            let o = api.get(name).await?;
            let s = &o.data["status"];
            Ok((s["phase"] == "Ready" && s["observedGeneration"] == generation).then_some(o))
        },
    )
    .await
}

/// Two replicas with --leader-elect: only the Lease holder reconciles; when it dies the other
/// takes the Lease and reconciles the next change.
#[tokio::test]
async fn one_leader_reconciles_and_the_other_takes_over() -> Result<()> {
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "ha").await?;
    let leases: Api<Lease> = ns.api();
    let mut first = Operator::start(ns.name(), &["--leader-elect"]).await?;
    let leader = eventually("a Lease holder", Duration::from_secs(30), || async {
        common::operator::lease_holder(&leases).await
    })
    .await?;
    let second = Operator::start(ns.name(), &["--leader-elect"]).await?;

    let api = llsd_api(&client, ns.name(), "v1alpha2");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "ha",
            json!({"distribution": {"name": "starter"}}),
        ),
    )
    .await?;
    phase_ready_at(&api, "ha", 1)
        .await
        .with_context(|| first.log_text())?;
    ensure!(
        first.counter("llsd_reconciles_total").await? >= 1.0,
        "the leader reconciled"
    );
    ensure!(
        second.counter("llsd_reconciles_total").await? == 0.0,
        "the other replica did not reconcile"
    );
    ensure!(
        common::operator::lease_holder(&leases).await?.as_deref() == Some(leader.as_str()),
        "the Lease did not move"
    );

    // The leader dies without releasing the Lease: the other one waits for it to expire.
    first.stop();
    api.patch(
        "ha",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"workload": {"replicas": 2}}})),
    )
    .await?;
    phase_ready_at(&api, "ha", 2)
        .await
        .with_context(|| second.log_text())?;
    ensure!(
        second.counter("llsd_reconciles_total").await? >= 1.0,
        "the new leader reconciled"
    );
    let now = common::operator::lease_holder(&leases).await?;
    ensure!(
        now.is_some() && now.as_deref() != Some(leader.as_str()),
        "the Lease moved: {now:?}"
    );
    let dep: Deployment = ns.api::<Deployment>().get("ha").await?;
    ensure!(dep.spec.and_then(|s| s.replicas) == Some(2));
    ns.delete().await
}

/// D9, US4, NFR-003: a postgres connection string is split into the Secret `<cr>-storage-sql`
/// (owned by the CR) whose keys feed LLSD_STORAGE_SQL_*; the password appears in no ConfigMap
/// and no status; a new value in the source Secret reaches the derived one.
#[tokio::test]
async fn a_postgres_connection_string_becomes_a_derived_secret() -> Result<()> {
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "pg").await?;
    let op = Operator::start(ns.name(), &[]).await?;
    let secrets: Api<Secret> = ns.api();
    let source: Secret = serde_json::from_value(json!({"metadata": {"name": "pg"},
        "stringData": {"uri": "postgresql://app:Sup3r%40secret@db.example:6543/llama?sslmode=require"}}))?;
    secrets.create(&PostParams::default(), &source).await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let spec = json!({"distribution": {"name": "starter"},
        "storage": {"sql": {"type": "postgres", "connectionString": {"secretKeyRef": {"name": "pg", "key": "uri"}}}}});
    api.create(&PostParams::default(), &object("v1alpha2", "pgx", spec))
        .await?;
    let cr = phase_ready_at(&api, "pgx", 1)
        .await
        .with_context(|| op.log_text())?;

    let derived = secrets
        .get("pgx-storage-sql")
        .await
        .context("the derived Secret")?;
    let data = derived.data.clone().unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
    };
    ensure!(get("host").as_deref() == Some("db.example"));
    ensure!(get("port").as_deref() == Some("6543"));
    ensure!(get("db").as_deref() == Some("llama"));
    ensure!(get("user").as_deref() == Some("app"));
    ensure!(
        get("password").as_deref() == Some("Sup3r@secret"),
        "percent-decoded"
    );
    ensure!(derived.metadata.owner_references.as_ref().is_some_and(|o| {
        o.iter()
            .any(|r| r.name == "pgx" && r.controller == Some(true))
    }));

    let dep: Deployment = ns.api::<Deployment>().get("pgx").await?;
    let env = dep
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default();
    let pw = env
        .iter()
        .find(|e| e.name == "LLSD_STORAGE_SQL_PASSWORD")
        .context("LLSD_STORAGE_SQL_PASSWORD")?;
    let r = pw
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .context("from a Secret")?;
    ensure!(r.name == "pgx-storage-sql" && r.key == "password");
    let cm_name = cr.data["status"]["configGeneration"]["configMapName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cm: ConfigMap = ns.api::<ConfigMap>().get(&cm_name).await?;
    let yaml = cm
        .data
        .and_then(|mut d| d.remove("config.yaml"))
        .unwrap_or_default();
    ensure!(
        yaml.contains("${env.LLSD_STORAGE_SQL_PASSWORD}"),
        "config references the env var"
    );
    // The split drops sslmode: the user is told by name, never by value.
    let events = wait_events(
        ns.client(),
        ns.name(),
        "pgx",
        &["ConnectionStringParametersIgnored"],
    )
    .await?;
    let note = events
        .iter()
        .find(|(r, _)| r == "ConnectionStringParametersIgnored")
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    ensure!(
        note.contains("sslmode") && note.contains("\"pg\""),
        "{note}"
    );
    for leak in [serde_json::to_string(&cr.data)?, yaml, note] {
        ensure!(!leak.contains("Sup3r"), "the password leaked");
    }

    // Rotation of the source value reaches the derived Secret.
    secrets
        .patch(
            "pg",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"stringData": {"uri": "postgresql://app:n3w@db.example:6543/llama"}}),
            ),
        )
        .await?;
    eventually(
        "the derived password follows the source",
        Duration::from_secs(30),
        || async {
            let s = secrets.get("pgx-storage-sql").await?;
            let pw: Option<Value> = s.data.and_then(|d| {
                d.get("password")
                    .map(|b| Value::String(String::from_utf8_lossy(&b.0).to_string()))
            });
            Ok((pw == Some(Value::String("n3w".into()))).then_some(()))
        },
    )
    .await
    .with_context(|| op.log_text())?;
    ns.delete().await
}

/// Objects of `kubectl kustomize deploy/rbac`, moved to namespace `ns` and, for the
/// cluster-scoped ones, renamed with `-<ns>` so a test never touches a real install.
fn rbac_for(ns: &str) -> Result<Vec<Value>> {
    let kubectl = std::env::var_os("LLSD_KUBECTL")
        .context("LLSD_KUBECTL is unset: run through tests/cluster/run-tests.sh")?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rbac");
    let out = std::process::Command::new(kubectl)
        .args(["kustomize", root])
        .output()?;
    ensure!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v: Value =
            serde_json::to_value(<serde_yaml::Value as serde::Deserialize>::deserialize(doc)?)?;
        let kind = v["kind"].as_str().unwrap_or_default().to_string();
        if kind.starts_with("Cluster") {
            let name = format!(
                "{}-{ns}",
                v["metadata"]["name"].as_str().unwrap_or_default()
            );
            v["metadata"]["name"] = json!(name);
            // The aggregated user roles have nothing to do with the operator's own rights.
            if v["metadata"]["labels"].as_object().is_some_and(|l| {
                l.keys()
                    .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate"))
            }) {
                continue;
            }
        } else {
            v["metadata"]["namespace"] = json!(ns);
        }
        if kind == "ClusterRoleBinding" {
            let role = format!("{}-{ns}", v["roleRef"]["name"].as_str().unwrap_or_default());
            v["roleRef"]["name"] = json!(role);
        }
        for s in v["subjects"].as_array_mut().into_iter().flatten() {
            s["namespace"] = json!(ns);
        }
        objects.push(v);
    }
    Ok(objects)
}

/// Issue 7, least-privilege RBAC: the operator running as its ServiceAccount with exactly the
/// shipped ClusterRole and Role reconciles a CR to Ready (every call it makes is allowed).
#[tokio::test]
async fn the_shipped_rbac_is_enough_to_reach_ready() -> Result<()> {
    use llsd_test_support::k8s_openapi::api::authentication::v1::TokenRequest;
    use llsd_test_support::k8s_openapi::api::core::v1::ServiceAccount;
    use llsd_test_support::kube::api::{ApiResource, DynamicObject as Dyn, GroupVersionKind};
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "rbac").await?;
    let mut cluster_scoped = Vec::new();
    for obj in rbac_for(ns.name())? {
        let (group, version) = match obj["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .split_once('/')
        {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap_or_default().to_string(),
            ),
        };
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, &kind));
        let api: Api<Dyn> = if kind.starts_with("Cluster") {
            cluster_scoped.push((
                ar.clone(),
                obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
            Api::all_with(client.clone(), &ar)
        } else {
            Api::namespaced_with(client.clone(), ns.name(), &ar)
        };
        api.create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await
            .with_context(|| format!("creating {kind}"))?;
    }
    let result = async {
        let sas: Api<ServiceAccount> = ns.api();
        let tr: TokenRequest = serde_json::from_value(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}))?;
        let tr: TokenRequest = sas.create_subresource("token", "llama-stack-operator", &PostParams::default(), &tr).await?;
        let token = tr.status.context("token status")?.token.context("token")?;
        // A kubeconfig with the admin one's cluster and the ServiceAccount's token.
        let admin = std::env::var("KUBECONFIG").context("KUBECONFIG")?;
        let mut cfg: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&admin)?)?;
        cfg["users"] = serde_yaml::from_str(&format!("[{{name: sa, user: {{token: {token}}}}}]"))?;
        let ctx_name = cfg["contexts"][0]["name"].clone();
        cfg["contexts"][0]["context"]["user"] = serde_yaml::Value::String("sa".into());
        cfg["current-context"] = ctx_name;
        let path = std::env::temp_dir().join(format!("llsd-{}-sa.kubeconfig", ns.name()));
        std::fs::write(&path, serde_yaml::to_string(&cfg)?)?;

        let op = Operator::start_with_env(ns.name(), &[], &[("KUBECONFIG", path.as_os_str())]).await?;
        let api = llsd_api(&client, ns.name(), "v1alpha2");
        let spec = json!({"distribution": {"name": "starter"}, "workload": {"replicas": 2}, "networking": {"expose": {}}});
        api.create(&PostParams::default(), &object("v1alpha2", "rbac", spec)).await?;
        phase_ready_at(&api, "rbac", 1).await.with_context(|| op.log_text())?;
        let log = std::fs::read_to_string(&op.log).unwrap_or_default();
        // The only refusal allowed: reading the webhook configurations the test names
        // `absent-*`, which the ClusterRole's resourceNames rightly do not cover.
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
            .filter(|l| !l.contains("\"absent-"))
            .collect();
        ensure!(refused.is_empty(), "the operator was refused something: {refused:#?}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    for (ar, name) in cluster_scoped {
        let api: Api<Dyn> = Api::all_with(client.clone(), &ar);
        let _ = api.delete(&name, &Default::default()).await;
    }
    result?;
    ns.delete().await
}
