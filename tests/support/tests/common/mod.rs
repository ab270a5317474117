//! Shared by the CRD and conversion tests: v1alpha1 samples and object helpers.
#![allow(dead_code)]

pub mod cr;
pub mod manifests;
pub mod node;
pub mod operator;
pub mod samples;

use llsd_test_support::kube::Client;
use llsd_test_support::kube::api::{Api, ApiResource, DynamicObject};
use llsd_test_support::kube::core::GroupVersionKind;
use serde_json::{Value, json};

pub fn llsd_api(client: &Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("llamastack.io", version, "LlamaStackDistribution");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "llamastackdistributions");
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub fn object(version: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("llamastack.io/{version}"),
        "kind": "LlamaStackDistribution",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a LlamaStackDistribution literal")
}

/// Every field of the v1alpha1 reference (§1.2), in manifests of our own.
pub fn v1alpha1_samples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "minimal",
            json!({"server": {"distribution": {"name": "starter"}}}),
        ),
        // The upstream e2e sample's shape.
        (
            "starter-e2e",
            json!({
            "replicas": 1,
            "server": {
                "distribution": {"name": "starter"},
                "containerSpec": {"name": "llama-stack", "port": 8321,
                                  "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
                                  "env": [{"name": "OLLAMA_URL", "value": "http://ollama-server-service.ollama-dist.svc.cluster.local:11434"},
                                          {"name": "INFERENCE_MODEL", "value": "llama3.2:1b"}]},
                "workers": 2,
                "podDisruptionBudget": {"maxUnavailable": 1},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                                               "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "starter-e2e"}}}],
                "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 75, "targetMemoryUtilizationPercentage": 70},
                "storage": {"size": "20Gi", "mountPath": "/home/lls/.lls"}}}),
        ),
        // User config, CA bundle, network, pod overrides, a direct image.
        (
            "custom-image",
            json!({
            "replicas": 2,
            "server": {
                "distribution": {"image": "quay.io/acme/llama-stack:0.7.3"},
                "containerSpec": {"name": "server", "command": ["/bin/sh", "-c"], "args": ["exec llama stack run"]},
                "podOverrides": {"serviceAccountName": "custom-sa", "terminationGracePeriodSeconds": 0,
                                 "volumes": [{"name": "cache", "emptyDir": {}}],
                                 "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
                "podDisruptionBudget": {"minAvailable": "50%"},
                "storage": {},
                "userConfig": {"configMapName": "llama-config", "configMapNamespace": "other"},
                "tlsConfig": {"caBundle": {"configMapName": "custom-ca-bundle", "configMapNamespace": "certs", "configMapKeys": ["ca.crt", "extra.crt"]}}},
            "network": {"exposeRoute": true, "allowedFrom": {"namespaces": ["*"], "labels": ["team"]}}}),
        ),
        (
            "replicas-zero",
            json!({"replicas": 0, "server": {"distribution": {"name": "remote-vllm"}}, "network": {"exposeRoute": false}}),
        ),
    ]
}

/// Every field of `sent` is in `got` with the same value (defaults may add more).
pub fn contains(got: &Value, sent: &Value, path: &str, diffs: &mut Vec<String>) {
    match (got, sent) {
        (Value::Object(g), Value::Object(s)) => {
            for (k, v) in s {
                match g.get(k) {
                    Some(gv) => contains(gv, v, &format!("{path}.{k}"), diffs),
                    None => diffs.push(format!("{path}.{k} was dropped")),
                }
            }
        }
        (Value::Array(g), Value::Array(s)) if g.len() == s.len() => {
            for (i, (gv, sv)) in g.iter().zip(s).enumerate() {
                contains(gv, sv, &format!("{path}[{i}]"), diffs);
            }
        }
        _ if got == sent => {}
        _ => diffs.push(format!("{path}: sent {sent}, stored {got}")),
    }
}

/// Creates or replaces the CRD (a PUT: whatever another test binary configured, e.g. the
/// conversion webhook, is gone afterwards) and waits until it is Established.
pub async fn install_crd(
    client: &Client,
    mut crd: llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use llsd_test_support::kube::api::PostParams;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    // Tests of one binary run in parallel and may install it at the same moment: a conflict
    // (409) means another one just did; read it back and try again.
    let mut attempt = 0;
    loop {
        let written = match crds.get_opt(&name).await? {
            Some(existing) => {
                crd.metadata.resource_version = existing.metadata.resource_version;
                crds.replace(&name, &PostParams::default(), &crd).await
            }
            None => crds.create(&PostParams::default(), &crd).await,
        };
        match written {
            Err(llsd_test_support::kube::Error::Api(s)) if s.code == 409 && attempt < 5 => {
                attempt += 1
            }
            other => {
                other.context("installing the CRD (a non-structural schema or a CEL rule over the cost budget fails here)")?;
                break;
            }
        }
    }
    llsd_test_support::wait_for(
        &crds,
        &name,
        std::time::Duration::from_secs(60),
        llsd_test_support::crd_established,
    )
    .await?;
    Ok(())
}

/// A CA and a serving certificate for 127.0.0.1: (CA PEM, cert PEM, key PEM).
pub fn certificates() -> anyhow::Result<(String, String, String)> {
    llsd_test_support::registry::loopback_certificates("llsd conversion test CA")
}

/// The operator's webhook server, running in this test process on a loopback port.
pub struct RunningWebhooks {
    pub port: u16,
    /// PEM of the CA that signed its serving certificate.
    pub ca: String,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningWebhooks {
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// Starts `llama_stack_operator::webhook` with a fresh CA, as the API server will call it.
pub async fn start_webhooks() -> anyhow::Result<RunningWebhooks> {
    start_webhooks_with(None).await
}

/// [`start_webhooks`] with a client for the validating webhook's lookups.
pub async fn start_webhooks_with(client: Option<Client>) -> anyhow::Result<RunningWebhooks> {
    let (ca, cert, key) = certificates()?;
    start_webhooks_tls(client, ca, &cert, &key).await
}

/// The webhook server with a given serving certificate.
pub async fn start_webhooks_tls(
    client: Option<Client>,
    ca: String,
    cert: &str,
    key: &str,
) -> anyhow::Result<RunningWebhooks> {
    use anyhow::Context;
    use llama_stack_operator::webhook::{Webhooks, router, serve, tls_config};
    let hooks = std::sync::Arc::new(Webhooks::with_builtin(client).context("built-in plugin")?);
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let tls = tls_config(cert.as_bytes(), key.as_bytes())?;
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, tls, router(hooks)).await {
            eprintln!("webhook server stopped: {e}");
        }
    });
    Ok(RunningWebhooks { port, ca, task })
}

/// One admission webhook entry for LlamaStackDistributions of `versions`, called at `url`
/// with `ca`, scoped to namespace `ns` so other tests' objects never meet it.
pub fn admission_webhook(name: &str, url: String, ca: &str, ns: &str, versions: &[&str]) -> Value {
    json!({
        "name": name,
        "clientConfig": {"url": url,
                         "caBundle": llsd_test_support::k8s_openapi::ByteString(ca.as_bytes().to_vec())},
        "rules": [{"apiGroups": ["llamastack.io"], "apiVersions": versions,
                   "operations": ["CREATE", "UPDATE"], "resources": ["llamastackdistributions"]}],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
    })
}
