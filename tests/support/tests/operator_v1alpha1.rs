//! Issues 6 and 7 with the operator process: a v1alpha1 object, converted by the operator's
//! own conversion webhook, reaches Ready with the upstream object names (US7), and the API
//! server still converts after the operator rotated its webhook certificate.
//!
//! A binary of its own: it points the cluster-wide CRD's conversion at one operator process
//! (and restores the plain CRD at the end). One test, so nothing else in this process meets
//! that CRD.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use llsd_test_support::k8s_openapi::api::networking::v1::Ingress;
use llsd_test_support::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use llsd_test_support::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use llsd_test_support::kube::Client;
use llsd_test_support::kube::api::{Api, DeleteParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{DeleteOnDrop, TestNamespace, client, eventually, wait_for};
use serde_json::json;

mod common;
use common::cr::{pvc_request, wait_converting};
use common::operator::{Operator, tls_handshake};
use common::{llsd_api, object};

const CRD_NAME: &str = "llamastackdistributions.llamastack.io";
/// `--webhook-secret` of [`Operator::start_with_webhook_port`].
const CERT_SECRET: &str = "llsd-test-webhook-cert";
const READY: Duration = Duration::from_secs(120);
/// The CR: the upstream e2e sample (v1alpha1-behavior §6) without autoscaling, so the
/// replica count is the CR's and the PDB is there.
const NAME: &str = "e2e";
const MOUNT: &str = "/home/lls/.lls";

#[tokio::test]
async fn v1alpha1_objects_reach_ready_and_conversion_survives_certificate_rotation() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "op-v1alpha1").await?;
    let result = exercise(&client, &ns).await;
    common::operator::finish_converting(&client, ns, result).await
}

async fn exercise(client: &Client, ns: &TestNamespace) -> Result<()> {
    let op = common::operator::start_converting(client, ns.name(), &["--cert-check-seconds", "1"])
        .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let secrets = ns.api::<Secret>();
    let first_ca = match eventually(
        "the operator's CA in the CRD's conversion",
        Duration::from_secs(30),
        || async { Ok(ca_bundle(&crds.get(CRD_NAME).await?)) },
    )
    .await
    {
        Ok(ca) => ca,
        // The operator injects at start only: a CRD reinstalled meanwhile stays without it.
        Err(e) => return Err(e.context(crd_ca_state(ns).await).context(op.log_text())),
    };
    ensure!(
        secret_ca(&secrets.get(CERT_SECRET).await?).as_deref() == Some(first_ca.as_str()),
        "the injected CA is the one in the operator's Secret"
    );
    let v1 = llsd_api(client, ns.name(), "v1alpha1");
    let v2 = llsd_api(client, ns.name(), "v1alpha2");
    let started = Instant::now();
    if let Err(e) = wait_converting(&v1).await {
        return Err(e.context(crd_ca_state(ns).await).context(op.log_text()));
    }
    eprintln!(
        "conversion through the operator works after {:?}",
        started.elapsed()
    );

    us7_upstream_sample(client, ns, &op, &v1, &v2).await?;
    rotation(ns, &op, &crds, op.webhook_port, &first_ca, &v1, &v2).await
}

/// US7: the upstream e2e sample, created through v1alpha1, runs with the upstream names.
async fn us7_upstream_sample(
    client: &Client,
    ns: &TestNamespace,
    op: &Operator,
    v1: &Api<DynamicObject>,
    v2: &Api<DynamicObject>,
) -> Result<()> {
    // No storage class in the test cluster: a volume bound to the claim in advance, so the
    // pods schedule (kwok runs nothing on it).
    let pv_name = format!("{}-pv", ns.name());
    let _pv = DeleteOnDrop::<PersistentVolume>::new(pv_name.clone()).await?;
    Api::<PersistentVolume>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": pv_name, "labels": {"llsd-test": "true"}},
                "spec": {"capacity": {"storage": "20Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": format!("/tmp/{pv_name}")},
                         "claimRef": {"namespace": ns.name(), "name": format!("{NAME}-pvc")}},
            }))?,
        )
        .await?;

    let spec = json!({
        "replicas": 2,
        "server": {
            "distribution": {"name": "starter"},
            "containerSpec": {"name": "llama-stack", "port": 8321,
                              "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
                              "env": [{"name": "OLLAMA_URL", "value": "http://ollama-server-service.ollama-dist.svc.cluster.local:11434"},
                                      {"name": "INFERENCE_MODEL", "value": "llama3.2:1b"}]},
            "workers": 2,
            "podDisruptionBudget": {"maxUnavailable": 1},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": NAME}}}],
            "storage": {"size": "20Gi", "mountPath": MOUNT}},
        "network": {"exposeRoute": true},
    });
    v1.create(&PostParams::default(), &object("v1alpha1", NAME, spec))
        .await
        .context("creating the v1alpha1 sample")?;
    wait_ready(v2, NAME, op).await?;
    // Ready means one pod serves (§9.3); the sample's e2e waits for both.
    let cr = eventually("both pods available", READY, || async {
        let o = v2.get(NAME).await?;
        if o.data["status"]["availableReplicas"] == 2 {
            Ok(Some(o))
        } else {
            Err(anyhow!("status {}", o.data["status"]))
        }
    })
    .await
    .with_context(|| op.log_text())?;
    let uid = cr.metadata.uid.clone().context("uid")?;
    let old = read_v1alpha1(v1, ns).await?;
    ensure!(
        old.data["status"]["phase"] == "Ready" && old.data["spec"]["server"]["workers"] == 2,
        "read as v1alpha1: {}",
        old.data
    );

    let owned = |meta: &llsd_test_support::kube::api::ObjectMeta| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid)
    };
    let dep = ns.api::<Deployment>().get(NAME).await?;
    ensure!(owned(&dep.metadata), "Deployment {NAME} is the CR's");
    let dspec = dep.spec.as_ref().context("Deployment spec")?;
    ensure!(dspec.replicas == Some(2), "replicas {:?}", dspec.replicas);
    ensure!(
        dspec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate"),
        "storage means Recreate"
    );
    let pod = dspec.template.spec.as_ref().context("pod spec")?;
    ensure!(pod.service_account_name.as_deref() == Some("e2e-sa"));
    let c = pod.containers.first().context("container")?;
    let env = |name: &str| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    ensure!(
        env("HF_HOME").as_deref() == Some(MOUNT),
        "HF_HOME {:?}",
        env("HF_HOME")
    );
    ensure!(env("INFERENCE_MODEL").as_deref() == Some("llama3.2:1b"));
    ensure!(
        env("OLLAMA_URL").as_deref()
            == Some("http://ollama-server-service.ollama-dist.svc.cluster.local:11434")
    );
    ensure!(env("LLS_WORKERS").as_deref() == Some("2"));
    ensure!(
        c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == "lls-storage" && m.mount_path == MOUNT),
        "storage mounted at {MOUNT}"
    );
    ensure!(
        pod.volumes.iter().flatten().any(|v| v
            .persistent_volume_claim
            .as_ref()
            .is_some_and(|p| p.claim_name == "e2e-pvc")),
        "the claim is mounted"
    );

    let svc = ns.api::<Service>().get("e2e-service").await?;
    ensure!(owned(&svc.metadata), "Service e2e-service is the CR's");
    ensure!(
        svc.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .is_some_and(|p| p.iter().any(|p| p.port == 8321)),
        "{:?}",
        svc.spec
    );
    let pvc = ns.api::<PersistentVolumeClaim>().get("e2e-pvc").await?;
    ensure!(owned(&pvc.metadata), "PVC e2e-pvc is the CR's");
    let size = pvc_request(&pvc);
    ensure!(size.as_deref() == Some("20Gi"), "PVC size {size:?}");
    let pdb = ns.api::<PodDisruptionBudget>().get("e2e-pdb").await?;
    ensure!(owned(&pdb.metadata), "PDB e2e-pdb is the CR's");
    ensure!(
        pdb.spec.as_ref().and_then(|s| s.max_unavailable.clone()) == Some(IntOrString::Int(1)),
        "{:?}",
        pdb.spec
    );
    let ing = ns.api::<Ingress>().get("e2e-ingress").await?;
    ensure!(owned(&ing.metadata), "Ingress e2e-ingress is the CR's");
    let backend = ing
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .and_then(|r| r.first())
        .and_then(|r| r.http.as_ref())
        .and_then(|h| h.paths.first())
        .and_then(|p| p.backend.service.as_ref())
        .map(|s| s.name.clone());
    ensure!(backend.as_deref() == Some("e2e-service"), "{backend:?}");
    let sa = ns.api::<ServiceAccount>().get("e2e-sa").await?;
    ensure!(owned(&sa.metadata), "ServiceAccount e2e-sa is the CR's");
    Ok(())
}

/// Issue 6: the operator re-issues a lost certificate, injects the new CA, serves the new
/// certificate, and the API server converts through it.
async fn rotation(
    ns: &TestNamespace,
    op: &Operator,
    crds: &Api<CustomResourceDefinition>,
    port: u16,
    old_ca: &str,
    v1: &Api<DynamicObject>,
    v2: &Api<DynamicObject>,
) -> Result<()> {
    let secrets = ns.api::<Secret>();
    tls_handshake(port, old_ca)
        .await
        .context("the webhooks serve a certificate of the injected CA")?;
    secrets
        .delete(CERT_SECRET, &DeleteParams::default())
        .await
        .context("deleting the operator's certificate Secret")?;
    let started = Instant::now();
    let new_ca = eventually(
        "a new CA in the CRD's conversion",
        Duration::from_secs(30),
        || async { Ok(ca_bundle(&crds.get(CRD_NAME).await?).filter(|c| c != old_ca)) },
    )
    .await
    .with_context(|| op.log_text())?;
    let secret = wait_for(&secrets, CERT_SECRET, Duration::from_secs(30), |_| true).await?;
    ensure!(
        secret_ca(&secret).as_deref() == Some(new_ca.as_str()),
        "the injected CA is the re-issued Secret's"
    );
    eventually(
        "the webhooks serving a certificate of the new CA",
        Duration::from_secs(30),
        || async { tls_handshake(port, &new_ca).await.map(Some) },
    )
    .await
    .with_context(|| op.log_text())?;
    ensure!(
        tls_handshake(port, old_ca).await.is_err(),
        "the served certificate is no longer the old CA's"
    );
    eprintln!("rotated in {:?}", started.elapsed());

    // The API server's webhook client may hold the old CA for a moment: retry the round trip.
    let started = Instant::now();
    let mut last;
    loop {
        match update_through_v1alpha1(v1).await {
            Ok(()) => break,
            Err(e) => last = format!("{e:#}"),
        }
        if started.elapsed() > Duration::from_secs(90) {
            bail!(
                "no v1alpha1 update went through the conversion webhook within 90s after the rotation; last error: {last}\n{}\n{}",
                crd_ca_state(ns).await,
                op.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "v1alpha1 update converted {:?} after the rotation",
        started.elapsed()
    );

    let hub = v2.get(NAME).await?;
    let env = &hub.data["spec"]["workload"]["overrides"]["env"];
    ensure!(
        env.as_array().is_some_and(|e| e
            .contains(&json!({"name": "INFERENCE_MODEL", "value": "llama3.2:3b"}))
            && e.iter().any(|v| v["name"] == "OLLAMA_URL")),
        "the v1alpha1 edit in v1alpha2: {env}"
    );
    ensure!(
        hub.data["spec"]["workload"]["workers"] == 2
            && hub.data["spec"]["workload"]["storage"]["size"] == "20Gi",
        "the rest is kept: {}",
        hub.data["spec"]
    );
    // The operator rolls the edit out.
    let cr = wait_ready(v2, NAME, op).await?;
    ensure!(
        cr.metadata.generation == hub.metadata.generation,
        "{:?}",
        cr.metadata.generation
    );
    wait_for(
        &ns.api::<Deployment>(),
        NAME,
        Duration::from_secs(60),
        |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.env.as_ref())
                .is_some_and(|e| {
                    e.iter().any(|e| {
                        e.name == "INFERENCE_MODEL" && e.value.as_deref() == Some("llama3.2:3b")
                    })
                })
        },
    )
    .await
    .with_context(|| op.log_text())?;
    let old = read_v1alpha1(v1, ns).await?;
    ensure!(
        old.data["spec"]["server"]["containerSpec"]["env"]
            .as_array()
            .is_some_and(
                |e| e.contains(&json!({"name": "INFERENCE_MODEL", "value": "llama3.2:3b"}))
            ),
        "read back as v1alpha1: {}",
        old.data["spec"]
    );
    Ok(())
}

/// Reads the sample as v1alpha1, changes one env value and writes it back through v1alpha1.
async fn update_through_v1alpha1(v1: &Api<DynamicObject>) -> Result<()> {
    let mut old = v1.get(NAME).await.context("reading as v1alpha1")?;
    ensure!(
        old.data["spec"]["server"]["workers"] == 2,
        "not converted: {}",
        old.data["spec"]
    );
    let env = old.data["spec"]["server"]["containerSpec"]["env"]
        .as_array_mut()
        .context("containerSpec.env")?;
    let var = env
        .iter_mut()
        .find(|e| e["name"] == "INFERENCE_MODEL")
        .context("INFERENCE_MODEL")?;
    var["value"] = json!("llama3.2:3b");
    v1.replace(NAME, &PostParams::default(), &old)
        .await
        .context("updating through v1alpha1")?;
    Ok(())
}

/// The CR is Ready for its current generation (read as v1alpha2).
async fn wait_ready(api: &Api<DynamicObject>, name: &str, op: &Operator) -> Result<DynamicObject> {
    eventually(&format!("{name} Ready"), READY, || async {
        let o = api.get(name).await?;
        let st = &o.data["status"];
        if st["phase"] == "Ready" && st["observedGeneration"] == json!(o.metadata.generation) {
            Ok(Some(o))
        } else {
            Err(anyhow!(
                "generation {:?}, status {st}",
                o.metadata.generation
            ))
        }
    })
    .await
    .with_context(|| op.log_text())
}

/// Reads the sample as v1alpha1 (through the conversion webhook); a failure says whether the
/// CRD still carries this operator's CA. The CRD is cluster-wide: any operator process started
/// meanwhile on the shared cluster injects its own CA into it, which breaks this test.
async fn read_v1alpha1(v1: &Api<DynamicObject>, ns: &TestNamespace) -> Result<DynamicObject> {
    match v1.get(NAME).await {
        Ok(o) => Ok(o),
        Err(e) => Err(anyhow!(e)
            .context(crd_ca_state(ns).await)
            .context("reading as v1alpha1")),
    }
}

async fn crd_ca_state(ns: &TestNamespace) -> String {
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client().clone());
    let crd = match crds.get(CRD_NAME).await {
        Ok(c) => c,
        Err(e) => return format!("the CRD cannot be read: {e}"),
    };
    let url = crd
        .spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| c.url.clone());
    let ours = ns
        .api::<Secret>()
        .get_opt(CERT_SECRET)
        .await
        .ok()
        .flatten()
        .and_then(|s| secret_ca(&s));
    if ours.is_some() && ca_bundle(&crd) == ours {
        format!("the CRD's conversion ({url:?}) carries this operator's CA")
    } else {
        format!(
            "the CRD's conversion ({url:?}) no longer carries this operator's CA: another operator process on the shared cluster injected its own, or the CRD was reinstalled"
        )
    }
}

fn ca_bundle(crd: &CustomResourceDefinition) -> Option<String> {
    let cc = crd
        .spec
        .conversion
        .as_ref()?
        .webhook
        .as_ref()?
        .client_config
        .as_ref()?;
    cc.ca_bundle
        .as_ref()
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

fn secret_ca(s: &Secret) -> Option<String> {
    s.data
        .as_ref()?
        .get("ca.crt")
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}
