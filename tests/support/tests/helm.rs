//! Issue 20 §2: the Helm chart in `deploy/helm/llama-stack-operator`, with the helm that
//! `tests/cluster/build.sh helm` builds from the Go module proxy (`LLSD_HELM`, set by
//! `run-tests.sh`):
//!
//! * with its default values it renders exactly the objects of `kubectl kustomize
//!   deploy/default` (but the Namespace, which `helm install --create-namespace` makes), and
//!   with `certs.mode=cert-manager` those of `deploy/cert-manager`;
//! * each value changes what it names, and nothing else;
//! * `helm lint --strict` is clean;
//! * it installs into the local control plane, upgrades and uninstalls (the CRD stays).
//!
//! FAILS, never skips, without `LLSD_HELM`, `LLSD_KUBECTL` and `KUBECONFIG`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::{TestNamespace, client, kubectl, wait_for};
mod common;
use common::manifests::{kustomize, repo, same, yaml_docs};
use serde_json::{Value, json};

const NS: &str = "llama-stack-operator-system";
/// An annotation the chart adds on purpose: `helm uninstall` keeps the CRD (and so every CR).
const KEEP: &str = "helm.sh/resource-policy";

fn chart() -> String {
    repo("deploy/helm/llama-stack-operator")
        .to_string_lossy()
        .into_owned()
}

/// Runs helm; fails unless it exits 0. Returns (stdout, stderr).
fn helm(args: &[&str]) -> Result<(String, String)> {
    let bin = std::env::var_os("LLSD_HELM").ok_or_else(|| {
        anyhow!("LLSD_HELM is unset: run the cluster tests with tests/cluster/run-tests.sh (it builds helm)")
    })?;
    let out = Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {bin:?}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    ensure!(
        out.status.success(),
        "helm {args:?} failed ({}): {stderr}{stdout}",
        out.status
    );
    Ok((stdout, stderr))
}

type Objects = BTreeMap<String, Value>;

fn key(v: &Value) -> String {
    format!(
        "{} {} {}/{}",
        v["apiVersion"].as_str().unwrap_or_default(),
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn by_key(docs: Vec<Value>) -> Objects {
    docs.into_iter().map(|d| (key(&d), d)).collect()
}

/// `helm template` of the chart in `NS` with `--set` values.
fn render(sets: &[&str]) -> Result<Objects> {
    let chart = chart();
    let mut args = vec![
        "template",
        "llama-stack-operator",
        &chart,
        "--namespace",
        NS,
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (out, _) = helm(&args)?;
    Ok(by_key(yaml_docs(&out)?))
}

/// `kubectl kustomize deploy/<entry>`, without the Namespace (the chart does not make it).
fn kustomized(entry: &str) -> Result<Objects> {
    let mut objects = by_key(kustomize(entry)?);
    objects.retain(|_, v| v["kind"] != "Namespace");
    Ok(objects)
}

/// The chart's objects without the one annotation only a Helm release needs.
fn without_keep(mut objects: Objects) -> Objects {
    for v in objects.values_mut() {
        // get_mut, not IndexMut: that would insert a null `annotations`.
        let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove(KEEP);
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    objects
}

/// The differences between two sets of objects, object by object, for a failure message.
fn differences(chart: &Objects, kustomize: &Objects) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in kustomize {
        match chart.get(k) {
            None => out.push(format!("only in kustomize: {k}")),
            Some(c) if !same(c, v) => {
                let show = |x: &Value| {
                    let mut x = x.clone();
                    if x["kind"] == "CustomResourceDefinition" {
                        x["spec"]["versions"] = json!("(left out)");
                    }
                    serde_yaml::to_string(&x).unwrap_or_default()
                };
                out.push(format!(
                    "{k} differs:\n--- chart\n{}--- kustomize\n{}",
                    show(c),
                    show(v)
                ));
            }
            Some(_) => {}
        }
    }
    out.extend(
        chart
            .keys()
            .filter(|k| !kustomize.contains_key(*k))
            .map(|k| format!("only in the chart: {k}")),
    );
    out
}

#[test]
fn default_values_render_the_objects_of_deploy_default() -> Result<()> {
    let chart = render(&[])?;
    ensure!(
        chart
            .values()
            .filter(|v| v["kind"] == "CustomResourceDefinition")
            .all(|v| v["metadata"]["annotations"][KEEP] == "keep"),
        "the CRD is kept at uninstall"
    );
    let diff = differences(&without_keep(chart), &kustomized("default")?);
    ensure!(diff.is_empty(), "{}", diff.join("\n"));
    Ok(())
}

#[test]
fn cert_manager_mode_renders_the_objects_of_deploy_cert_manager() -> Result<()> {
    let chart = without_keep(render(&["certs.mode=cert-manager"])?);
    let diff = differences(&chart, &kustomized("cert-manager")?);
    ensure!(diff.is_empty(), "{}", diff.join("\n"));
    Ok(())
}

/// `metrics.serviceMonitor`, `metrics.prometheusRule` and `metrics.dashboard` add exactly the
/// objects of `deploy/monitoring` (issue 20 §4).
#[test]
fn monitoring_values_add_the_objects_of_deploy_monitoring() -> Result<()> {
    let base = render(&[])?;
    let added: Objects = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
    ])?
    .into_iter()
    .filter(|(k, _)| !base.contains_key(k))
    .collect();
    let diff = differences(&added, &kustomized("monitoring")?);
    ensure!(diff.is_empty(), "{}", diff.join("\n"));
    Ok(())
}

fn deployment(objects: &Objects) -> Result<&Value> {
    objects
        .get(&format!("apps/v1 Deployment {NS}/llama-stack-operator"))
        .context("the chart renders the operator's Deployment")
}

fn args(objects: &Objects) -> Result<Vec<String>> {
    Ok(
        deployment(objects)?["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .context("container args")?
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
    )
}

#[test]
fn each_value_changes_what_it_names() -> Result<()> {
    let base = render(&[])?;
    let changed = render(&[
        "replicas=2",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "leaderElection.leaseDurationSeconds=20",
        "leaderElection.renewGraceSeconds=5",
        "watchNamespace=team-a",
        "resources.limits.memory=1Gi",
        "operatorConfig.imageOverrides.starter=registry.example/llama-stack:1.2",
        "operatorConfig.ingressDomain=apps.example.com",
        "metrics.service=false",
        "crd.install=false",
    ])?;
    let d = deployment(&changed)?;
    assert_eq!(d["spec"]["replicas"], 2);
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/llamastack/llama-stack-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    let a = args(&changed)?;
    for flag in [
        "--lease-duration-seconds=20",
        "--lease-renew-grace-seconds=5",
        "--watch-namespace=team-a",
        "--leader-elect",
    ] {
        ensure!(a.iter().any(|x| x == flag), "{flag} in {a:?}");
    }
    let cm = &changed[&format!("v1 ConfigMap {NS}/llama-stack-operator-config")];
    let overrides: Value =
        serde_json::from_str(cm["data"]["image-overrides"].as_str().unwrap_or("null"))?;
    assert_eq!(
        overrides,
        json!({"starter": "registry.example/llama-stack:1.2"})
    );
    assert_eq!(cm["data"]["ingress-domain"], "apps.example.com");
    ensure!(
        !changed
            .keys()
            .any(|k| k.contains("llama-stack-operator-metrics")),
        "metrics.service=false leaves out the metrics Service"
    );
    ensure!(
        !changed
            .values()
            .any(|v| v["kind"] == "CustomResourceDefinition"),
        "crd.install=false leaves out the CRD"
    );
    // Nothing else moved: the same objects but the two left out.
    assert_eq!(base.len(), changed.len() + 2, "{:?}", changed.keys());

    let off = args(&render(&["leaderElection.enabled=false"])?)?;
    ensure!(!off.iter().any(|x| x == "--leader-elect"), "{off:?}");

    let issuer = render(&[
        "certs.mode=cert-manager",
        "certs.certManager.issuerRef.kind=ClusterIssuer",
        "certs.certManager.issuerRef.name=corp-ca",
    ])?;
    ensure!(
        !issuer.values().any(|v| v["kind"] == "Issuer"),
        "an existing issuer: no self-signed Issuer"
    );
    let cert =
        &issuer[&format!("cert-manager.io/v1 Certificate {NS}/llama-stack-operator-webhook")];
    assert_eq!(
        cert["spec"]["issuerRef"],
        json!({"kind": "ClusterIssuer", "name": "corp-ca"})
    );

    let selector = render(&["webhooks.namespaceSelector.matchLabels.llamastack\\.io/webhooks=on"])?;
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let hook = selector
            .values()
            .find(|v| v["kind"] == kind)
            .with_context(|| format!("a {kind}"))?;
        assert_eq!(
            hook["webhooks"][0]["namespaceSelector"],
            json!({"matchLabels": {"llamastack.io/webhooks": "on"}})
        );
    }

    let wrong = helm(&["template", "x", &chart(), "--set", "certs.mode=vault"]);
    let message = format!("{:#}", wrong.err().context("certs.mode=vault is refused")?);
    ensure!(
        message.contains("certs.mode: \"vault\" is neither operator nor cert-manager"),
        "{message}"
    );
    Ok(())
}

#[test]
fn helm_lint_is_clean() -> Result<()> {
    let (out, err) = helm(&["lint", "--strict", &chart()])?;
    ensure!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}{err}"
    );
    ensure!(
        !out.contains("[WARNING]") && !out.contains("[ERROR]"),
        "{out}{err}"
    );
    Ok(())
}

/// What the release put in the cluster, cluster-scoped, by name: made before a test that
/// failed half-way (its namespace, and with it Helm's record, deleted) would block the next
/// install ("exists and cannot be imported into the current release").
const CLUSTER_OBJECTS: &[(&str, &str)] = &[
    ("clusterrole", "llama-stack-operator"),
    ("clusterrole", "llsd-editor-role"),
    ("clusterrole", "llsd-viewer-role"),
    ("clusterrolebinding", "llama-stack-operator"),
    (
        "mutatingwebhookconfiguration",
        "llama-stack-operator-mutating",
    ),
    (
        "validatingwebhookconfiguration",
        "llama-stack-operator-validating",
    ),
];

fn delete_cluster_objects() -> Result<()> {
    for (kind, name) in CLUSTER_OBJECTS {
        kubectl(
            &["delete", kind, name, "--ignore-not-found", "--wait=false"],
            None,
        )?;
    }
    Ok(())
}

/// A real install into the local control plane (kwok runs the operator's pod as a fake): the
/// API server accepts every object (schemas, RBAC escalation checks, the namespace's
/// restricted Pod Security admission of the pod), the Deployment becomes Available, an upgrade changes the replicas, and an uninstall removes all but the CRD. The
/// suite's CRD is in place (`crd.install=false`), and the webhooks see only this test's
/// namespace: other tests share the cluster, and nothing answers these webhooks.
#[tokio::test]
async fn the_chart_installs_upgrades_and_uninstalls() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "helm").await?;
    // As docs/operations.md says to: the operator's pod must be admitted there.
    kubectl(
        &[
            "label",
            "namespace",
            ns.name(),
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    )?;
    delete_cluster_objects()?;
    let release = "llsd";
    let selector = format!(
        "webhooks.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={}",
        ns.name()
    );
    let install = helm(&[
        "install",
        release,
        &chart(),
        "--namespace",
        ns.name(),
        "--set",
        "crd.install=false",
        "--set",
        &selector,
        "--wait",
        "--timeout",
        "3m",
    ]);
    let result = async {
        install?;
        let deployments = ns.api::<Deployment>();
        let available =
            |d: &Deployment| d.status.as_ref().and_then(|s| s.available_replicas) == Some(1);
        wait_for(
            &deployments,
            "llama-stack-operator",
            Duration::from_secs(60),
            available,
        )
        .await?;
        let hooks = kubectl(
            &[
                "get",
                "validatingwebhookconfiguration",
                "llama-stack-operator-validating",
                "-o",
                "json",
            ],
            None,
        )?;
        let hooks: Value = serde_json::from_str(&hooks)?;
        assert_eq!(
            hooks["webhooks"][0]["clientConfig"]["service"]["namespace"],
            ns.name()
        );
        let (status, _) = helm(&["status", release, "--namespace", ns.name()])?;
        ensure!(status.contains("STATUS: deployed"), "{status}");

        helm(&[
            "upgrade",
            release,
            &chart(),
            "--namespace",
            ns.name(),
            "--reuse-values",
            "--set",
            "replicas=2",
            "--wait",
            "--timeout",
            "3m",
        ])?;
        let d = deployments.get("llama-stack-operator").await?;
        assert_eq!(d.spec.and_then(|s| s.replicas), Some(2));

        helm(&[
            "uninstall",
            release,
            "--namespace",
            ns.name(),
            "--wait",
            "--timeout",
            "2m",
        ])?;
        for (kind, name) in CLUSTER_OBJECTS {
            let left = kubectl(
                &["get", kind, name, "--ignore-not-found", "-o", "name"],
                None,
            )?;
            ensure!(
                left.trim().is_empty(),
                "{kind}/{name} is left after helm uninstall"
            );
        }
        let left = kubectl(
            &[
                "-n",
                ns.name(),
                "get",
                "deployment,service,configmap,serviceaccount,role,rolebinding",
                "-l",
                "app.kubernetes.io/name=llama-stack-operator",
                "-o",
                "name",
            ],
            None,
        )?;
        ensure!(left.trim().is_empty(), "left after helm uninstall: {left}");
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = delete_cluster_objects();
    }
    result?;
    ns.delete().await
}
