//! The real node (tests/node, issue 16): what its tests share. Services are reached from this
//! machine by ClusterIP (kube-proxy's rules cover the host too), pods by their IP on the node's
//! bridge.

use anyhow::{Context, Result, ensure};
use llsd_test_support::k8s_openapi::api::core::v1::{Pod, Service};
use llsd_test_support::kube::Client;
use llsd_test_support::kube::api::{Api, ListParams};
use llsd_test_support::{eventually, kubectl};
use serde_json::Value;
use std::time::Duration;

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

/// The node's name (tests/node/lib.sh).
pub const NODE_NAME: &str = "llsd-node";

/// How long a llama-stack server may take from apply to Ready on the node (measured 12-30 s;
/// a cold page cache after an image import is slower, and one start of the full sample's pod
/// in a fresh-clone run took 5 min 0 s before its first provider: the kubelet, containerd and
/// kube-proxy logs showed nothing, so a timeout now prints the server's timestamped timeline).
/// It happened again in session 5's fresh-clone run (both replicas silent for 5 min, killed by
/// the startup probe at its 300 s, then Ready minutes after the restart): the wait covers one
/// such kill and a second start.
pub const SERVER_READY: Duration = Duration::from_secs(900);

/// Starts (or keeps) the stand-in for vLLM behind `vllm.models.svc:8000`, the samples' endpoint.
pub fn stand_in_vllm() -> Result<()> {
    let manifest = root().join("tests/node/manifests/stand-in-vllm.yaml");
    let manifest = manifest.to_string_lossy();
    kubectl(&["apply", "-f", &manifest], None)?;
    kubectl(
        &[
            "-n",
            "models",
            "rollout",
            "status",
            "deployment/vllm",
            "--timeout=120s",
        ],
        None,
    )?;
    Ok(())
}

/// `http://<clusterIP>:<first port>` of a Service.
pub async fn service_url(client: &Client, ns: &str, name: &str) -> Result<String> {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .with_context(|| format!("Service {ns}/{name}"))?;
    let spec = svc.spec.context("Service spec")?;
    let ip = spec.cluster_ip.context("clusterIP")?;
    let port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .map(|p| p.port)
        .context("Service port")?;
    Ok(format!("http://{ip}:{port}"))
}

/// A client that never goes through a proxy and opens a new connection per request (a request
/// loop must see each pod the Service picks, not one kept-alive connection).
pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// GET `url`, which must answer 200 with JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    json_answer(http.get(url), &format!("GET {url}")).await
}

/// POST JSON to `url`, which must answer 200 with JSON.
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let req = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    json_answer(req, &format!("POST {url}")).await
}

async fn json_answer(req: reqwest::RequestBuilder, what: &str) -> Result<Value> {
    let resp = req.send().await.with_context(|| what.to_string())?;
    let status = resp.status();
    let text = resp.text().await?;
    ensure!(status.is_success(), "{what}: {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// Waits until `base` answers `GET /v1/health` through `http`. A CR is Ready once its pods
/// are; kube-proxy programs the Service's new endpoints a moment later (until then a ClusterIP
/// without endpoints refuses connections), as in any cluster.
pub async fn wait_answering(http: &reqwest::Client, base: &str) -> Result<()> {
    let url = format!("{base}/v1/health");
    eventually(
        &format!("{url} to answer"),
        Duration::from_secs(30),
        || async { Ok(get_json(http, &url).await.is_ok().then_some(())) },
    )
    .await
}

/// The `data` list of a llama-stack list answer (`/v1/models`, `/v1/providers`).
pub fn data(v: &Value) -> Vec<Value> {
    v["data"].as_array().cloned().unwrap_or_default()
}

/// The server pods of CR `name`, each with every container ready, all on the real node.
pub async fn ready_server_pods(client: &Client, ns: &str, name: &str) -> Result<Vec<Pod>> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await?;
    let mut ready = Vec::new();
    for pod in pods.items {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let spec = pod.spec.as_ref().context("pod spec")?;
        ensure!(
            spec.node_name.as_deref() == Some(NODE_NAME),
            "pod {:?} runs on {:?}, not on the real node",
            pod.metadata.name,
            spec.node_name
        );
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        if !statuses.is_empty() && statuses.iter().all(|c| c.ready) {
            ready.push(pod);
        }
    }
    Ok(ready)
}

/// Waits until CR `name` has exactly `replicas` pods, all Ready: `Ready` on the CR is
/// reported once the new pods are, and a rollout's old pods may still be stopping.
pub async fn wait_rolled_out(client: &Client, ns: &str, name: &str, replicas: usize) -> Result<()> {
    eventually(
        &format!("{name}'s {replicas} new pods Ready and no other pod"),
        SERVER_READY,
        || async {
            let all = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
                .await?;
            let ready = ready_server_pods(client, ns, name).await?;
            Ok((all.items.len() == replicas && ready.len() == replicas).then_some(()))
        },
    )
    .await
}

/// The last lines of the server container's log (for failure messages).
pub fn server_log(ns: &str, name: &str) -> String {
    let log = kubectl(
        &[
            "-n",
            ns,
            "logs",
            "-l",
            &format!("app.kubernetes.io/instance={name}"),
            "--all-containers",
            "--prefix",
            "--timestamps",
            "--tail=-1",
        ],
        None,
    );
    match log {
        Ok(log) => log_timeline(&log, 60),
        Err(e) => format!("(no log: {e})"),
    }
}

/// The last `n` entries of a `kubectl logs --prefix --timestamps` text, without the lines that
/// continue an entry (the server prints its whole config.yaml at start-up): a slow start shows
/// as a gap between two timestamps instead of being cut off by the config dump.
fn log_timeline(log: &str, n: usize) -> String {
    let entries: Vec<&str> = log
        .lines()
        .filter(|l| {
            // "[pod/p/c] 2026-...Z <text>": an entry's text starts at once, a continuation
            // with spaces.
            let rest = l.split_once("] ").map_or(*l, |(_, r)| r);
            rest.split_once(' ')
                .is_some_and(|(_, text)| !text.is_empty() && !text.starts_with(' '))
        })
        .collect();
    entries[entries.len().saturating_sub(n)..].join("\n")
}

/// A hostPath PersistentVolume pre-bound to claim `ns/claim`: the test node has no volume
/// provisioner, and the samples' PVCs name no StorageClass, so this is what an administrator
/// would do. The directory is on this machine (the node), world-writable because the server
/// runs as a non-root uid and hostPath volumes ignore fsGroup. `delete` removes both.
pub struct HostPathVolume {
    pub name: String,
    pub dir: std::path::PathBuf,
}

impl HostPathVolume {
    pub fn create(ns: &str, claim: &str, size: &str) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let name = format!("{ns}-{claim}");
        let dir = std::env::temp_dir().join(format!("llsd-pv-{name}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))?;
        let pv = serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"llsd.test/host-path": "true"}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": dir.to_string_lossy(), "type": "Directory"},
                "claimRef": {"namespace": ns, "name": claim},
            },
        });
        kubectl(&["apply", "-f", "-"], Some(&pv.to_string()))?;
        Ok(Self { name, dir })
    }

    /// The names of the files the pods wrote into the volume.
    pub fn files(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    pub fn delete(self) -> Result<()> {
        kubectl(
            &[
                "delete",
                "pv",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        )?;
        // A pod of the deleted namespace may still be stopping, and writing (preStop waits).
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if tries < 15 => {
                    tries += 1;
                    eprintln!("retrying the removal of {}: {e}", self.dir.display());
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {}", self.dir.display()));
                }
            }
        }
    }
}
