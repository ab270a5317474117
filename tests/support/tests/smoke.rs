//! Smoke tests of the real control plane started by `tests/cluster/up`
//! (run them with `tests/cluster/run-tests.sh`). Each test works in its own
//! throwaway namespace; they FAIL, never skip, when `KUBECONFIG` is unset.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use llsd_test_support::k8s_openapi::ByteString;
use llsd_test_support::k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use llsd_test_support::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use llsd_test_support::k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use llsd_test_support::kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams,
};
use llsd_test_support::kube::{Client, ResourceExt};
use llsd_test_support::{DeleteOnDrop, TestNamespace, client, eventually, wait_deleted, wait_for};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test object literal must deserialize")
}

/// Status code and message of an API error.
fn api_error(e: &llsd_test_support::kube::Error) -> Option<(u16, String)> {
    match e {
        llsd_test_support::kube::Error::Api(s) => Some((s.code, s.message.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn deployment_pods_become_ready_on_kwok_nodes() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-deploy").await?;

    // The fake nodes registered by `up` are Ready (kwok heartbeats them).
    let nodes: Api<Node> = Api::all(client.clone());
    let fake = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await?;
    ensure!(
        fake.items.len() >= 2,
        "expected 2 kwok nodes, found {}",
        fake.items.len()
    );

    let deployments: Api<Deployment> = ns.api();
    let deploy: Deployment = from_json(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1" }] }
            }
        }
    }));
    deployments.create(&PostParams::default(), &deploy).await?;

    let ready = wait_for(&deployments, "web", TIMEOUT, |d| {
        let s = d.status.as_ref();
        s.and_then(|s| s.ready_replicas) == Some(3) && s.and_then(|s| s.updated_replicas) == Some(3)
    })
    .await?;
    assert_eq!(ready.status.unwrap().ready_replicas, Some(3));

    // kwok scheduled-and-readied them: bound to fake nodes, with pod IPs.
    let pods: Api<Pod> = ns.api();
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 3);
    for p in &list.items {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        assert!(
            node.starts_with("kwok-node-"),
            "pod {} on node {node:?}",
            p.name_any()
        );
        let st = p.status.as_ref().context("pod status")?;
        assert_eq!(st.phase.as_deref(), Some("Running"), "pod {}", p.name_any());
        assert!(st.pod_ip.is_some(), "pod {} has no IP", p.name_any());
    }

    // Deleting the Deployment garbage-collects its ReplicaSet and Pods.
    let replicasets: Api<ReplicaSet> = ns.api();
    let rs = replicasets
        .list(&ListParams::default().labels("app=web"))
        .await?;
    ensure!(
        rs.items.len() == 1,
        "expected 1 ReplicaSet, found {}",
        rs.items.len()
    );
    let rs_name = rs.items[0].name_any();
    deployments
        .delete("web", &DeleteParams::background())
        .await?;
    wait_deleted(&replicasets, &rs_name, TIMEOUT).await?;
    eventually("the Deployment's Pods to be deleted", TIMEOUT, || {
        let pods = pods.clone();
        async move {
            let left = pods.list(&ListParams::default().labels("app=web")).await?;
            if left.items.is_empty() {
                Ok(Some(()))
            } else {
                let names: Vec<_> = left.items.iter().map(|p| p.name_any()).collect();
                Err(anyhow!("pods left: {names:?}"))
            }
        }
    })
    .await?;
    ns.delete().await
}

#[tokio::test]
async fn deleting_an_owner_garbage_collects_its_dependents() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-gc").await?;
    let cms: Api<ConfigMap> = ns.api();

    let owner = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([("role".into(), "owner".into())])),
                ..Default::default()
            },
        )
        .await?;
    let dependent: ConfigMap = from_json(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": owner.uid().context("owner uid")?,
                "blockOwnerDeletion": true,
            }]
        },
        "data": { "role": "dependent" }
    }));
    cms.create(&PostParams::default(), &dependent).await?;
    // An unrelated ConfigMap survives.
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some("bystander".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;

    cms.delete("owner", &DeleteParams::background()).await?;
    wait_deleted(&cms, "owner", TIMEOUT).await?;
    wait_deleted(&cms, "dependent", TIMEOUT).await?;
    assert!(
        cms.get_opt("bystander").await?.is_some(),
        "the unrelated ConfigMap was deleted"
    );

    // Foreground deletion: the owner goes only after its dependent.
    let owner = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner2".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let mut dep2 = dependent.clone();
    dep2.metadata.name = Some("dependent2".into());
    dep2.metadata.owner_references.as_mut().unwrap()[0].name = "owner2".into();
    dep2.metadata.owner_references.as_mut().unwrap()[0].uid = owner.uid().unwrap();
    cms.create(&PostParams::default(), &dep2).await?;
    cms.delete("owner2", &DeleteParams::foreground()).await?;
    wait_deleted(&cms, "owner2", TIMEOUT).await?;
    assert!(
        cms.get_opt("dependent2").await?.is_none(),
        "foreground deletion left the dependent"
    );
    ns.delete().await
}

#[tokio::test]
async fn crd_cel_validation_rejects_bad_objects() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-cel").await?;
    // A group of its own, so concurrent test processes never share the CRD.
    let group = format!("{}.smoke.llamastack.io", ns.name());
    let crd_name = format!("widgets.{group}");
    const MESSAGE: &str = "minReplicas must not exceed maxReplicas";

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _guard = DeleteOnDrop::<CustomResourceDefinition>::new(crd_name.clone()).await?;
    let crd: CustomResourceDefinition = from_json(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": crd_name },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["minReplicas", "maxReplicas"],
                        "properties": {
                            "minReplicas": { "type": "integer", "minimum": 0 },
                            "maxReplicas": { "type": "integer", "minimum": 0 }
                        },
                        "x-kubernetes-validations": [{
                            "rule": "self.minReplicas <= self.maxReplicas",
                            "message": MESSAGE
                        }]
                    }}
                }}
            }]
        }
    }));
    crds.create(&PostParams::default(), &crd).await?;
    wait_for(
        &crds,
        &crd_name,
        TIMEOUT,
        llsd_test_support::crd_established,
    )
    .await?;

    let ar = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let widget = |name: &str, min: i64, max: i64| -> DynamicObject {
        let mut o = DynamicObject::new(name, &ar);
        o.data = json!({ "spec": { "minReplicas": min, "maxReplicas": max } });
        o
    };

    // Right after Established the new resource may still 404 for a moment.
    let (code, message) = eventually("the invalid Widget to be rejected", TIMEOUT, || {
        let (widgets, bad) = (widgets.clone(), widget("bad", 5, 1));
        async move {
            match widgets.create(&PostParams::default(), &bad).await {
                Ok(_) => bail!("the invalid Widget was accepted"),
                Err(e) => match api_error(&e) {
                    Some((404, m)) => Err(anyhow!("not served yet: {m}")),
                    Some(cm) => Ok(Some(cm)),
                    None => Err(e.into()),
                },
            }
        }
    })
    .await?;
    assert_eq!(code, 422, "unexpected error: {message}");
    assert!(
        message.contains(MESSAGE),
        "422 without the rule's message: {message}"
    );

    widgets
        .create(&PostParams::default(), &widget("good", 1, 3))
        .await?;
    let got = widgets.get("good").await?;
    assert_eq!(got.data["spec"]["maxReplicas"], 3);

    // The rule applies to updates too.
    let mut upd = got.clone();
    upd.data["spec"]["minReplicas"] = json!(9);
    let err = widgets
        .replace("good", &PostParams::default(), &upd)
        .await
        .expect_err("update accepted");
    let (code, message) = api_error(&err).context("not an API error")?;
    assert_eq!(code, 422);
    assert!(message.contains(MESSAGE), "{message}");
    ns.delete().await
}

// ------------------------------------------------------------ admission webhook

const DENY_LABEL: &str = "smoke.llamastack.io/deny";
const DENY_MESSAGE: &str =
    "smoke webhook: ConfigMaps labelled smoke.llamastack.io/deny=true are not allowed";

struct Webhook {
    port: u16,
    ca_pem: String,
    calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTPS admission webhook on 127.0.0.1 (random port) with a fresh
/// self-signed CA: denies objects labelled `DENY_LABEL=true`.
async fn start_webhook() -> Result<Webhook> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "llsd smoke webhook CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let calls = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let calls = calls.clone();
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, calls) = (acceptor.clone(), calls.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| review(req, calls.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    });
    Ok(Webhook {
        port,
        ca_pem: ca_cert.pem(),
        calls,
        task,
    })
}

async fn review(req: Request<Incoming>, calls: Arc<AtomicUsize>) -> Result<Response<Full<Bytes>>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let body = req.into_body().collect().await?.to_bytes();
    let review: Value = serde_json::from_slice(&body)?;
    let request = &review["request"];
    let denied = request["object"]["metadata"]["labels"][DENY_LABEL] == "true";
    let mut response = json!({ "uid": request["uid"], "allowed": !denied });
    if denied {
        response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": DENY_MESSAGE });
    }
    let out = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&out)?)))?)
}

fn labelled_cm(name: &str, deny: bool) -> ConfigMap {
    let mut labels = BTreeMap::new();
    if deny {
        labels.insert(DENY_LABEL.to_string(), "true".to_string());
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn apiserver_calls_a_webhook_on_loopback() -> Result<()> {
    let client: Client = client().await?;
    let ns = TestNamespace::create(&client, "smoke-webhook").await?;
    let hook = start_webhook().await?;

    let vwc_name = format!("smoke-{}", ns.name());
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _guard = DeleteOnDrop::<ValidatingWebhookConfiguration>::new(vwc_name.clone()).await?;
    let mut vwc: ValidatingWebhookConfiguration = from_json(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": { "name": vwc_name },
        "webhooks": [{
            "name": "deny-labelled.smoke.llamastack.io",
            "clientConfig": { "url": format!("https://127.0.0.1:{}/validate", hook.port) },
            "rules": [{
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
                "scope": "Namespaced"
            }],
            // Only this test's namespace: other tests sharing the cluster are unaffected.
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns.name() } },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 10
        }]
    }));
    vwc.webhooks.as_mut().unwrap()[0].client_config.ca_bundle =
        Some(ByteString(hook.ca_pem.clone().into_bytes()));
    vwcs.create(&PostParams::default(), &vwc).await?;

    // The API server picks the configuration up asynchronously: retry until a
    // labelled ConfigMap is denied (deleting any accepted in the meantime).
    let cms: Api<ConfigMap> = ns.api();
    let mut attempt = 0;
    let (code, message) = eventually("the webhook to deny a labelled ConfigMap", TIMEOUT, || {
        attempt += 1;
        let (cms, name) = (cms.clone(), format!("denied-{attempt}"));
        async move {
            match cms
                .create(&PostParams::default(), &labelled_cm(&name, true))
                .await
            {
                Ok(_) => {
                    let _ = cms.delete(&name, &DeleteParams::default()).await;
                    Err(anyhow!(
                        "labelled ConfigMap {name} was accepted (webhook not active yet?)"
                    ))
                }
                Err(e) => match api_error(&e) {
                    Some(cm) => Ok(Some(cm)),
                    None => Err(e.into()),
                },
            }
        }
    })
    .await?;
    assert_eq!(code, 403, "unexpected denial: {message}");
    assert!(
        message.contains(DENY_MESSAGE),
        "denied without the webhook's message: {message}"
    );
    assert!(
        message.contains("deny-labelled.smoke.llamastack.io"),
        "{message}"
    );

    let before = hook.calls.load(Ordering::SeqCst);
    cms.create(&PostParams::default(), &labelled_cm("allowed", false))
        .await?;
    assert!(
        hook.calls.load(Ordering::SeqCst) > before,
        "the unlabelled ConfigMap was accepted without calling the webhook"
    );

    // Clean up the cluster-scoped object explicitly (the guard is the fallback).
    vwcs.delete(&vwc_name, &DeleteParams::default()).await?;
    wait_deleted(&vwcs, &vwc_name, TIMEOUT).await?;
    ns.delete().await
}

#[tokio::test]
async fn refuses_to_run_without_kubeconfig() {
    // Never skip: without KUBECONFIG the support crate fails with a clear message.
    for unset in [None, Some(std::ffi::OsStr::new(""))] {
        let err = llsd_test_support::config_from(unset)
            .await
            .expect_err("config without KUBECONFIG");
        let msg = format!("{err:#}");
        assert!(msg.contains("KUBECONFIG is not set"), "{msg}");
        assert!(msg.contains("tests/cluster/up"), "{msg}");
    }
}
