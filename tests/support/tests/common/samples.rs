//! The samples on the real node (issue 16, 17): an operator process per test on a namespace
//! of its own, a file of deploy/samples applied as its header says, and what the server
//! answers.

use super::cr::{phase, status, wait_cr};
use super::llsd_api;
use super::node::{
    SERVER_READY, data, get_json, http_client, root, server_log, service_url, stand_in_vllm,
    wait_answering,
};
use super::operator::Operator;
use anyhow::{Context, Result, ensure};
use llsd_test_support::k8s_openapi::api::core::v1::Namespace;
use llsd_test_support::kube::api::{Api, Patch, PatchParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{TestNamespace, client, kubectl};
use serde_json::{Value, json};

/// A namespace enforcing the restricted Pod Security Standard, with the CRD installed and an
/// operator process watching it.
pub async fn setup(
    prefix: &str,
) -> Result<(llsd_test_support::kube::Client, TestNamespace, Operator)> {
    setup_with(prefix, &[]).await
}

/// As [`setup`], the operator reading images from the plain-HTTP loopback registry `host`.
pub async fn setup_reading(
    prefix: &str,
    host: &str,
) -> Result<(llsd_test_support::kube::Client, TestNamespace, Operator)> {
    setup_with(prefix, &["--registry-plain-http", host]).await
}

pub async fn setup_with(
    prefix: &str,
    operator_args: &[&str],
) -> Result<(llsd_test_support::kube::Client, TestNamespace, Operator)> {
    let client = client().await?;
    super::install_crd(&client, llama_stack_operator::api::crd::crd()?).await?;
    let ns = restricted_namespace(&client, prefix).await?;
    let op = Operator::start(ns.name(), operator_args).await?;
    stand_in_vllm()?;
    Ok((client, ns, op))
}

/// As [`setup`], with the CRD's conversion webhook served by the operator, so v1alpha1 objects
/// are stored (as v1alpha2) the way the installs in deploy/ store them. End the test with
/// [`common::operator::finish_converting`].
pub async fn setup_converting(
    prefix: &str,
) -> Result<(llsd_test_support::kube::Client, TestNamespace, Operator)> {
    let client = client().await?;
    let ns = restricted_namespace(&client, prefix).await?;
    let op = super::operator::start_converting(&client, ns.name(), &[]).await?;
    stand_in_vllm()?;
    Ok((client, ns, op))
}

pub async fn restricted_namespace(
    client: &llsd_test_support::kube::Client,
    prefix: &str,
) -> Result<TestNamespace> {
    let ns = TestNamespace::create(client, prefix).await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})),
        )
        .await?;
    Ok(ns)
}

/// Applies a file of deploy/samples as its header says (`kubectl apply -n <ns> -f <file>`).
pub fn apply_sample(ns: &str, file: &str) -> Result<()> {
    let path = root().join("deploy/samples").join(file);
    kubectl(&["-n", ns, "apply", "-f", &path.to_string_lossy()], None)?;
    Ok(())
}

/// Applies a file of deploy/samples with `spec`'s top-level fields replacing those of its
/// LlamaStackDistribution.
pub fn apply_sample_with(ns: &str, file: &str, spec: Value) -> Result<()> {
    apply_sample_edited(ns, file, |merged| {
        let merged = merged.as_object_mut().context("spec")?;
        for (k, val) in spec.as_object().context("a spec object")? {
            merged.insert(k.clone(), val.clone());
        }
        Ok(())
    })
}

/// Applies a file of deploy/samples after `edit` changed its LlamaStackDistribution's spec.
pub fn apply_sample_edited(
    ns: &str,
    file: &str,
    edit: impl FnOnce(&mut Value) -> Result<()>,
) -> Result<()> {
    let text = std::fs::read_to_string(root().join("deploy/samples").join(file))?;
    let mut items = Vec::new();
    let mut edit = Some(edit);
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v: Value = serde::Deserialize::deserialize(doc)?;
        if v["kind"] == "LlamaStackDistribution" {
            let edit = edit
                .take()
                .context("one LlamaStackDistribution per sample")?;
            edit(&mut v["spec"])?;
        }
        if !v.is_null() {
            items.push(v);
        }
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    kubectl(&["-n", ns, "apply", "-f", "-"], Some(&list.to_string()))?;
    Ok(())
}

/// Waits until CR `name` is Ready for its current generation with `generation`'s config
/// rolled out: every server pod Ready on the node. Explains a timeout with the pods and log.
pub async fn wait_ready(api: &Api<DynamicObject>, ns: &str, name: &str) -> Result<DynamicObject> {
    wait_cr(api, name, SERVER_READY, |o| {
        phase(o) == "Ready"
            && status(o)["observedGeneration"] == json!(o.metadata.generation.unwrap_or(-1))
    })
    .await
    .with_context(|| {
        let pods = kubectl(&["-n", ns, "get", "pods", "-o", "wide"], None).unwrap_or_default();
        format!("pods:\n{pods}\nserver log:\n{}", server_log(ns, name))
    })
}

/// Waits until CR `name` is Ready and its Service `<name>-service` answers; returns the CR, a
/// client and the Service's URL.
pub async fn serving(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    op: &Operator,
    name: &str,
) -> Result<(DynamicObject, reqwest::Client, String)> {
    let api = llsd_api(client, ns, "v1alpha2");
    let cr = wait_ready(&api, ns, name)
        .await
        .with_context(|| op.log_text())?;
    let http = http_client()?;
    let url = service_url(client, ns, &format!("{name}-service")).await?;
    wait_answering(&http, &url).await?;
    Ok((cr, http, url))
}

/// The ids of the providers the server reports, as `api/provider_id/provider_type`.
pub async fn providers(http: &reqwest::Client, url: &str) -> Result<Vec<String>> {
    let v = get_json(http, &format!("{url}/v1/providers")).await?;
    Ok(data(&v)
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}",
                p["api"].as_str().unwrap_or_default(),
                p["provider_id"].as_str().unwrap_or_default(),
                p["provider_type"].as_str().unwrap_or_default()
            )
        })
        .collect())
}

pub async fn model_ids(http: &reqwest::Client, url: &str) -> Result<Vec<String>> {
    let v = get_json(http, &format!("{url}/v1/models")).await?;
    Ok(data(&v)
        .iter()
        .filter_map(|m| {
            m["id"]
                .as_str()
                .or(m["identifier"].as_str())
                .map(String::from)
        })
        .collect())
}

/// Everything of a namespace but its Secrets: where a Secret value must never show.
const SCANNED_KINDS: &str = "llamastackdistributions.llamastack.io,configmaps,deployments,\
                             replicasets,pods,services,serviceaccounts,persistentvolumeclaims,\
                             poddisruptionbudgets,horizontalpodautoscalers,ingresses,\
                             networkpolicies,events,events.events.k8s.io";

/// No value of `values`, as it is or in base64, in any object of namespace `ns` but its
/// Secrets (the CRs with their status, ConfigMaps, pod templates and pods, Events of both
/// APIs, ...) nor anywhere in the operator's whole log.
pub fn assert_no_secret_values(ns: &str, op: &Operator, values: &[&str]) -> Result<()> {
    assert_no_secret_values_in(ns, &op.full_log(), values)
}

/// [`assert_no_secret_values`] over `log`: the logs of every operator process a test ran.
pub fn assert_no_secret_values_in(ns: &str, log: &str, values: &[&str]) -> Result<()> {
    use base64::Engine as _;
    let objects = kubectl(&["-n", ns, "get", SCANNED_KINDS, "-o", "json"], None)?;
    let mut found = Vec::new();
    for value in values {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        for (what, text) in [
            ("the namespace's objects", objects.as_str()),
            ("the operator's log", log),
        ] {
            if text.contains(value) || text.contains(b64.as_str()) {
                found.push(format!("{value:?} in {what}"));
            }
        }
    }
    ensure!(
        found.is_empty(),
        "Secret values outside Secrets ({} bytes of log scanned): {found:?}",
        log.len()
    );
    Ok(())
}

/// GET `url` every 50 ms, each on a new connection (the client keeps none), until stopped:
/// what a client of the Service sees during a rollout.
pub struct RequestLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl RequestLoop {
    pub fn start(http: &reqwest::Client, url: String) -> RequestLoop {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, http) = (stop.clone(), http.clone());
        let task = tokio::spawn(async move {
            let (mut ok, mut failures) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match get_json(&http, &url).await {
                    Ok(_) => ok += 1,
                    Err(e) => failures.push(format!("{e:#}")),
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            (ok, failures)
        });
        RequestLoop { stop, task }
    }

    /// Stops the loop; fails unless every request succeeded and there were at least
    /// `at_least` of them.
    pub async fn stop_expecting_no_failure(self, during: &str, at_least: u64) -> Result<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failures) = self.task.await?;
        ensure!(
            failures.is_empty(),
            "{} of {} requests failed {during}; first: {:?}",
            failures.len(),
            ok + failures.len() as u64,
            failures.first()
        );
        ensure!(ok >= at_least, "too few requests to say anything: {ok}");
        Ok(ok)
    }
}
