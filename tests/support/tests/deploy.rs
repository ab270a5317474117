//! FR-078: the kustomize install in `deploy/`. The three entry points (`default`,
//! `cert-manager`, `local`) build with the kubectl of the test cluster (its embedded
//! kustomize) and hold what the install promises; the in-cluster install passes a server-side
//! dry run against the real API server, and the operator's pod template is admitted into a
//! namespace that enforces the `restricted` Pod Security Standard. FAILS, never skips,
//! without `LLSD_KUBECTL` and `KUBECONFIG` (run it with `tests/cluster/run-tests.sh`).
//!
//! Cluster-scoped objects are only ever dry-run here. The one real write outside a test
//! namespace is the operator namespace `llama-stack-operator-system` itself (created if
//! missing, never deleted: other runs may be using it), which the namespaced objects of the
//! install need to exist for their dry run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use llsd_test_support::k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use llsd_test_support::kube::api::{Api, Patch, PatchParams, PostParams};
use llsd_test_support::{TestNamespace, client, eventually, kubectl, unique_name};
mod common;
use common::manifests::{kustomize, repo, same, yaml_docs};
use serde_json::{Value, json};

const NS: &str = "llama-stack-operator-system";
const OPERATOR: &str = "llama-stack-operator";
const CRD: &str = "llamastackdistributions.llamastack.io";
const WEBHOOK_SERVICE: &str = "llama-stack-operator-webhook";
const MUTATING: &str = "llama-stack-operator-mutating";
const VALIDATING: &str = "llama-stack-operator-validating";
const CONFIG_MAP: &str = "llama-stack-operator-config";
const CERT_SECRET: &str = "llama-stack-operator-webhook-cert";
const CERT_DIR: &str = "/var/run/llama-stack-operator/certs";
const INJECT_CA: &str = "cert-manager.io/inject-ca-from";
const IMAGE: &str = "ghcr.io/llamastack/llama-stack-operator:0.1.0";

// ---------------------------------------------------------------------------------------
// kubectl and the builds

fn deploy_path(entry: &str) -> PathBuf {
    repo(&format!("deploy/{entry}"))
}

/// The objects `kubectl kustomize deploy/<entry>` prints.
struct Build {
    entry: &'static str,
    docs: Vec<Value>,
}

fn build(entry: &'static str) -> Result<Build> {
    Ok(Build {
        entry,
        docs: kustomize(entry)?,
    })
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

impl Build {
    /// The one object of this kind and name.
    fn get(&self, k: &str, n: &str) -> Result<&Value> {
        let found: Vec<&Value> = self
            .docs
            .iter()
            .filter(|d| kind(d) == k && name(d) == n)
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => bail!("deploy/{} has no {k} {n}", self.entry),
            _ => bail!("deploy/{} has {} objects {k} {n}", self.entry, found.len()),
        }
    }

    fn objects(&self) -> BTreeSet<(String, String)> {
        self.docs
            .iter()
            .map(|d| (kind(d).to_string(), name(d).to_string()))
            .collect()
    }

    fn deployment(&self) -> Result<&Value> {
        self.get("Deployment", OPERATOR)
    }
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

/// What `deploy/default` installs, no more and no less.
fn default_objects() -> BTreeSet<(String, String)> {
    set(&[
        ("Namespace", NS),
        ("CustomResourceDefinition", CRD),
        ("ServiceAccount", OPERATOR),
        ("ClusterRole", OPERATOR),
        ("ClusterRoleBinding", OPERATOR),
        ("Role", OPERATOR),
        ("RoleBinding", OPERATOR),
        ("ClusterRole", "llsd-editor-role"),
        ("ClusterRole", "llsd-viewer-role"),
        ("ConfigMap", CONFIG_MAP),
        ("Deployment", OPERATOR),
        ("Service", "llama-stack-operator-metrics"),
        ("Service", WEBHOOK_SERVICE),
        ("MutatingWebhookConfiguration", MUTATING),
        ("ValidatingWebhookConfiguration", VALIDATING),
    ])
}

// ---------------------------------------------------------------------------------------
// Checks shared by the entry points

/// Whether a label selector selects an object with these labels.
fn selects(selector: &Value, labels: &BTreeMap<&str, &str>) -> Result<bool> {
    if let Some(m) = selector["matchLabels"].as_object() {
        for (k, v) in m {
            if labels.get(k.as_str()).copied() != v.as_str() {
                return Ok(false);
            }
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let key = e["key"].as_str().context("matchExpressions key")?;
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = labels.get(key).copied();
        let ok = match e["operator"].as_str().unwrap_or_default() {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => !have.is_some_and(|h| values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => bail!("unknown selector operator {other:?}"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A namespace as the API server labels every namespace.
fn namespace_labels(ns: &str) -> BTreeMap<&str, &str> {
    [("kubernetes.io/metadata.name", ns)].into()
}

enum Endpoint {
    /// Through the webhook Service (in-cluster install).
    Service,
    /// By URL at the operator process on this machine (`deploy/local`).
    Url,
}

fn client_config(endpoint: &Endpoint, path: &str) -> Value {
    match endpoint {
        Endpoint::Service => json!({"service": {
            "name": WEBHOOK_SERVICE, "namespace": NS, "path": path, "port": 443}}),
        Endpoint::Url => json!({"url": format!("https://127.0.0.1:9443{path}")}),
    }
}

fn check_webhooks(b: &Build, endpoint: &Endpoint) -> Result<()> {
    // The mutation rewrites v1alpha2 short forms only (D4): requests made in v1alpha1 skip it
    // (Exact), where Equivalent had the API server call it for nothing on every v1alpha1
    // write. Validation judges both versions.
    for (k, n, path, policy, versions) in [
        (
            "MutatingWebhookConfiguration",
            MUTATING,
            "/mutate",
            "Exact",
            json!(["v1alpha2"]),
        ),
        (
            "ValidatingWebhookConfiguration",
            VALIDATING,
            "/validate",
            "Equivalent",
            json!(["v1alpha1", "v1alpha2"]),
        ),
    ] {
        let cfg = b.get(k, n)?;
        let hooks = cfg["webhooks"]
            .as_array()
            .with_context(|| format!("{k} {n} has no webhooks"))?;
        ensure!(hooks.len() == 1, "{k} {n}: {} webhooks", hooks.len());
        let h = &hooks[0];
        let what = format!("deploy/{}: {k} {n}", b.entry);
        assert_eq!(h["failurePolicy"], "Fail", "{what}");
        assert_eq!(h["sideEffects"], "None", "{what}");
        assert_eq!(h["admissionReviewVersions"], json!(["v1"]), "{what}");
        assert_eq!(h["timeoutSeconds"], 10, "{what}");
        assert_eq!(h["matchPolicy"], policy, "{what}");
        let rules = h["rules"].as_array().context("rules")?;
        ensure!(rules.len() == 1, "{what}: {} rules", rules.len());
        let r = &rules[0];
        assert_eq!(r["apiGroups"], json!(["llamastack.io"]), "{what}");
        assert_eq!(r["apiVersions"], versions, "{what}");
        assert_eq!(r["operations"], json!(["CREATE", "UPDATE"]), "{what}");
        // The resource itself, not its status subresource (nor a wildcard covering it).
        assert_eq!(r["resources"], json!(["llamastackdistributions"]), "{what}");
        let sel = &h["namespaceSelector"];
        for exempt in [NS, "kube-system"] {
            ensure!(
                !selects(sel, &namespace_labels(exempt))?,
                "{what}: the namespaceSelector {sel} sends namespace {exempt} to the webhook"
            );
        }
        ensure!(
            selects(sel, &namespace_labels("team-a"))?,
            "{what}: the namespaceSelector {sel} exempts ordinary namespaces too"
        );
        assert_eq!(h["clientConfig"], client_config(endpoint, path), "{what}");
    }
    Ok(())
}

/// The CRD as generated under deploy/crd, without the given fields.
fn without(mut crd: Value, conversion: bool) -> Value {
    if conversion {
        crd["spec"].as_object_mut().map(|s| s.remove("conversion"));
    }
    crd["metadata"]
        .as_object_mut()
        .map(|m| m.remove("annotations"));
    crd
}

fn check_crd(b: &Build, endpoint: &Endpoint) -> Result<()> {
    let crd = b.get("CustomResourceDefinition", CRD)?;
    let conv = &crd["spec"]["conversion"];
    let what = format!("deploy/{}: the CRD's spec.conversion {conv}", b.entry);
    assert_eq!(conv["strategy"], "Webhook", "{what}");
    assert_eq!(
        conv["webhook"]["conversionReviewVersions"],
        json!(["v1"]),
        "{what}"
    );
    assert_eq!(
        conv["webhook"]["clientConfig"],
        client_config(endpoint, "/convert"),
        "{what}"
    );
    // Apart from conversion (and annotations), exactly the generated CRD.
    let generated = std::fs::read_to_string(deploy_path("crd").join(format!("{CRD}.yaml")))?;
    let generated = yaml_docs(&generated)?
        .pop()
        .context("deploy/crd holds the CRD")?;
    ensure!(
        same(&without(crd.clone(), true), &without(generated, true)),
        "deploy/{}: the CRD differs from deploy/crd beyond spec.conversion",
        b.entry
    );
    Ok(())
}

/// `--flag=value` / `--flag value` / `--flag` arguments after the subcommand.
fn flags(args: &[Value]) -> Result<BTreeMap<String, Option<String>>> {
    let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i]
            .strip_prefix("--")
            .with_context(|| format!("argument {:?} is not a flag ({args:?})", args[i]))?;
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None if i + 1 < args.len() && !args[i + 1].starts_with("--") => {
                i += 1;
                (a, Some(args[i].to_string()))
            }
            None => (a, None),
        };
        ensure!(
            out.insert(k.to_string(), v).is_none(),
            "flag --{k} given twice ({args:?})"
        );
        i += 1;
    }
    Ok(out)
}

/// The operator container's flags (after `run`).
fn operator_flags(deployment: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .context("the operator container has args")?;
    ensure!(
        args.first().and_then(Value::as_str) == Some("run"),
        "the operator's args must start with the run subcommand: {args:?}"
    );
    flags(&args[1..])
}

fn flag<'a>(f: &'a BTreeMap<String, Option<String>>, k: &str) -> Option<&'a str> {
    f.get(k).and_then(|v| v.as_deref())
}

/// A container port by name or number, as a number.
fn resolve_port(container: &Value, port: &Value) -> Option<i64> {
    let ports = container["ports"].as_array()?;
    match port {
        Value::String(n) => ports
            .iter()
            .find(|p| p["name"] == n.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        Value::Number(n) => ports
            .iter()
            .find(|p| p["containerPort"].as_i64() == n.as_i64())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => None,
    }
}

/// The operator Deployment: image, flags, ports, probes, env, resources and a pod that
/// meets the restricted Pod Security Standard.
fn check_operator_deployment(b: &Build) -> Result<()> {
    let d = b.deployment()?;
    let what = format!("deploy/{}: Deployment {OPERATOR}", b.entry);
    assert_eq!(d["spec"]["replicas"], 1, "{what}");
    let pod = &d["spec"]["template"]["spec"];
    let c = {
        let cs = pod["containers"].as_array().context("containers")?;
        ensure!(cs.len() == 1, "{what}: {} containers", cs.len());
        &cs[0]
    };
    assert_eq!(c["image"], IMAGE, "{what}");

    // Security: non-root, read-only root filesystem, no privilege escalation, no capabilities.
    let psc = &pod["securityContext"];
    let csc = &c["securityContext"];
    assert_eq!(
        psc["runAsNonRoot"], true,
        "{what}: pod securityContext {psc}"
    );
    assert_eq!(psc["runAsUser"], 65532, "{what}: pod securityContext {psc}");
    assert_eq!(
        psc["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: pod securityContext {psc}"
    );
    ensure!(
        csc["runAsNonRoot"] != false && csc["runAsUser"].as_i64().unwrap_or(65532) != 0,
        "{what}: the container overrides the non-root pod: {csc}"
    );
    assert_eq!(csc["readOnlyRootFilesystem"], true, "{what}: {csc}");
    assert_eq!(csc["allowPrivilegeEscalation"], false, "{what}: {csc}");
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]), "{what}: {csc}");
    ensure!(
        csc["capabilities"]["add"].is_null() && csc["privileged"] != true,
        "{what}: {csc}"
    );
    // The one writable place: an emptyDir at /tmp.
    let tmp = c["volumeMounts"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["mountPath"] == "/tmp"))
        .with_context(|| format!("{what}: nothing mounted at /tmp"))?;
    let tmp_volume = pod["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == tmp["name"]))
        .with_context(|| format!("{what}: no volume {} for /tmp", tmp["name"]))?;
    ensure!(
        tmp_volume["emptyDir"].is_object(),
        "{what}: /tmp is {tmp_volume}"
    );

    // Flags, and the ports and probes that follow from them.
    let f = operator_flags(d)?;
    ensure!(
        f.get("leader-elect") == Some(&None),
        "{what}: no --leader-elect in {f:?}"
    );
    for (k, v) in [
        ("webhook-port", "9443"),
        ("metrics-port", "8080"),
        ("probe-port", "8081"),
        ("cert-dir", CERT_DIR),
        ("webhook-service", WEBHOOK_SERVICE),
        ("mutating-webhook-configuration", MUTATING),
        ("validating-webhook-configuration", VALIDATING),
    ] {
        assert_eq!(flag(&f, k), Some(v), "{what}: --{k} in {f:?}");
    }
    for (port, number) in [("webhook", 9443), ("metrics", 8080), ("probes", 8081)] {
        assert_eq!(
            resolve_port(c, &json!(port)),
            Some(number),
            "{what}: container port {port}"
        );
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{what}: {probe} {get}");
        assert_eq!(
            resolve_port(c, &get["port"]),
            Some(8081),
            "{what}: {probe} {get}"
        );
        ensure!(
            get["scheme"].is_null() || get["scheme"] == "HTTP",
            "{what}: {probe} {get}"
        );
    }

    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .context("env")?
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e)))
        .collect();
    assert_eq!(
        env.get("OPERATOR_NAMESPACE")
            .map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]),
        Some(&json!("metadata.namespace")),
        "{what}: env {env:?}"
    );
    assert_eq!(
        env.get("LOG_FORMAT").map(|e| &e["value"]),
        Some(&json!("json")),
        "{what}"
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "50m", "memory": "128Mi"},
               "limits": {"cpu": "1", "memory": "512Mi"}}),
        "{what}"
    );
    assert_eq!(pod["serviceAccountName"], OPERATOR, "{what}");
    assert_eq!(pod["terminationGracePeriodSeconds"], 15, "{what}");
    b.get("ServiceAccount", OPERATOR)?;

    // The Services reach this pod on the right ports.
    let pod_labels: BTreeMap<&str, &str> = d["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .context("pod labels")?
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect();
    ensure!(
        selects(&d["spec"]["selector"], &pod_labels)?,
        "{what}: the selector does not select its own pods"
    );
    for (svc, port, target) in [
        (WEBHOOK_SERVICE, 443, 9443),
        ("llama-stack-operator-metrics", 8080, 8080),
    ] {
        let s = b.get("Service", svc)?;
        ensure!(
            selects(&json!({"matchLabels": s["spec"]["selector"]}), &pod_labels)?,
            "Service {svc}'s selector {} misses the operator pod {pod_labels:?}",
            s["spec"]["selector"]
        );
        let p = s["spec"]["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["port"] == port))
            .with_context(|| format!("Service {svc} has no port {port}"))?;
        assert_eq!(
            resolve_port(c, &p["targetPort"]),
            Some(target),
            "Service {svc}: {p}"
        );
    }
    Ok(())
}

/// Whether any rule allows `verb` on `group`/`resource` (for object `name`, if given; a rule
/// with resourceNames never allows a request without a name, such as list or create).
fn allows(rules: &Value, group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    let has = |v: &Value, x: &str| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|i| i == x || i == "*"))
    };
    rules.as_array().into_iter().flatten().any(|r| {
        has(&r["apiGroups"], group)
            && has(&r["resources"], resource)
            && has(&r["verbs"], verb)
            && match r["resourceNames"].as_array() {
                None => true,
                Some(names) => name.is_some_and(|n| names.iter().any(|x| x == n)),
            }
    })
}

fn check_rbac(b: &Build) -> Result<()> {
    let rules = &b.get("ClusterRole", OPERATOR)?["rules"];
    for r in rules.as_array().context("ClusterRole rules")? {
        for field in ["apiGroups", "resources", "verbs"] {
            ensure!(
                !r[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "*")),
                "ClusterRole {OPERATOR}: wildcard {field} in {r}"
            );
        }
    }
    let all = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    let can = |g, r, v| allows(rules, g, r, v, None);
    let can_named = |g, r, v, n| allows(rules, g, r, v, Some(n));

    // The custom resources: read; only the status is written.
    for v in ["get", "list", "watch"] {
        ensure!(can("llamastack.io", "llamastackdistributions", v), "{v}");
    }
    for v in ["create", "patch", "update", "delete"] {
        ensure!(
            !can("llamastack.io", "llamastackdistributions", v),
            "the operator must not {v} LlamaStackDistributions"
        );
    }
    for v in ["get", "patch", "update"] {
        ensure!(
            can("llamastack.io", "llamastackdistributions/status", v),
            "status {v}"
        );
    }
    // What it renders.
    for (g, r) in [
        ("apps", "deployments"),
        ("", "services"),
        ("", "serviceaccounts"),
        ("", "persistentvolumeclaims"),
        ("", "configmaps"),
        ("networking.k8s.io", "networkpolicies"),
        ("networking.k8s.io", "ingresses"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
    ] {
        for v in all {
            ensure!(can(g, r, v), "ClusterRole {OPERATOR} cannot {v} {g}/{r}");
        }
    }
    for v in ["get", "list", "watch", "create", "patch", "delete"] {
        ensure!(can("", "secrets", v), "secrets {v}");
    }
    ensure!(
        !can("", "secrets", "update"),
        "secrets are applied, not updated"
    );
    // Read only: pods (install state, readiness) and ReplicaSets (which pods run the new
    // config, which ConfigMaps are still mounted), issue 17.
    for (g, r, read) in [
        ("", "pods", &["get", "list", "watch"][..]),
        ("apps", "replicasets", &["get", "list"]),
    ] {
        for v in all {
            ensure!(
                can(g, r, v) == read.contains(&v),
                "ClusterRole {OPERATOR}: {v} {g}/{r} should be {}",
                if read.contains(&v) {
                    "allowed"
                } else {
                    "refused"
                }
            );
        }
    }
    for g in ["", "events.k8s.io"] {
        for v in ["create", "patch"] {
            ensure!(can(g, "events", v), "events ({g:?}) {v}");
        }
    }
    // Certificates: only its own webhook configurations and CRD, by name.
    for (r, own) in [
        ("mutatingwebhookconfigurations", MUTATING),
        ("validatingwebhookconfigurations", VALIDATING),
    ] {
        for v in ["get", "update", "patch"] {
            ensure!(
                can_named("admissionregistration.k8s.io", r, v, own),
                "{v} {r} {own}"
            );
            ensure!(
                !can_named(
                    "admissionregistration.k8s.io",
                    r,
                    v,
                    "someone-elses-webhook"
                ),
                "{v} on any {r}: resourceNames missing"
            );
        }
        for v in ["list", "watch", "create", "delete"] {
            ensure!(!can("admissionregistration.k8s.io", r, v), "{v} {r}");
        }
    }
    for v in ["get", "update", "patch"] {
        ensure!(
            can_named("apiextensions.k8s.io", "customresourcedefinitions", v, CRD),
            "{v} the CRD"
        );
        ensure!(
            !can_named(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                v,
                "widgets.example.com"
            ),
            "{v} on any CRD: resourceNames missing"
        );
    }
    ensure!(
        !can("rbac.authorization.k8s.io", "clusterrolebindings", "create")
            && !can("rbac.authorization.k8s.io", "rolebindings", "create"),
        "the operator needs no RBAC writes"
    );

    let sa = json!([{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NS}]);
    let crb = b.get("ClusterRoleBinding", OPERATOR)?;
    assert_eq!(
        crb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR})
    );
    assert_eq!(crb["subjects"], sa);

    // The operator namespace: leader election, the certificate Secret, the ConfigMap.
    let role = b.get("Role", OPERATOR)?;
    assert_eq!(role["metadata"]["namespace"], NS);
    let rules = &role["rules"];
    for v in all {
        ensure!(
            allows(rules, "coordination.k8s.io", "leases", v, None),
            "leases {v}"
        );
    }
    // create requests carry no name, so resourceNames cannot apply to them.
    for r in ["secrets", "configmaps"] {
        ensure!(allows(rules, "", r, "create", None), "Role: {r} create");
    }
    for v in ["get", "update", "patch"] {
        ensure!(
            allows(rules, "", "secrets", v, Some(CERT_SECRET)),
            "Role: secrets {v} {CERT_SECRET}"
        );
        ensure!(
            allows(rules, "", "configmaps", v, Some(CONFIG_MAP)),
            "Role: configmaps {v} {CONFIG_MAP}"
        );
    }
    for v in ["list", "watch"] {
        ensure!(allows(rules, "", "configmaps", v, None), "configmaps {v}");
    }
    let rb = b.get("RoleBinding", OPERATOR)?;
    assert_eq!(rb["metadata"]["namespace"], NS);
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR})
    );
    assert_eq!(rb["subjects"], sa);

    // Aggregated user roles.
    let editor = b.get("ClusterRole", "llsd-editor-role")?;
    let viewer = b.get("ClusterRole", "llsd-viewer-role")?;
    for (role, label) in [
        (editor, "aggregate-to-edit"),
        (editor, "aggregate-to-admin"),
        (viewer, "aggregate-to-view"),
    ] {
        assert_eq!(
            role["metadata"]["labels"][format!("rbac.authorization.k8s.io/{label}")],
            "true",
            "{}",
            name(role)
        );
    }
    for v in all {
        ensure!(
            allows(
                &editor["rules"],
                "llamastack.io",
                "llamastackdistributions",
                v,
                None
            ),
            "editor {v}"
        );
        let viewer_can = allows(
            &viewer["rules"],
            "llamastack.io",
            "llamastackdistributions",
            v,
            None,
        );
        ensure!(
            viewer_can == ["get", "list", "watch"].contains(&v),
            "viewer {v}: {viewer_can}"
        );
    }
    for role in [editor, viewer] {
        ensure!(
            allows(
                &role["rules"],
                "llamastack.io",
                "llamastackdistributions/status",
                "get",
                None
            ),
            "{} status",
            name(role)
        );
        ensure!(
            !allows(
                &role["rules"],
                "llamastack.io",
                "llamastackdistributions/status",
                "update",
                None
            ),
            "{} may not write status",
            name(role)
        );
    }
    Ok(())
}

/// The namespace (restricted Pod Security) and the operator ConfigMap, parseable as the
/// operator parses it.
fn check_namespace_and_config(b: &Build) -> Result<()> {
    let ns = b.get("Namespace", NS)?;
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "deploy/{}",
        b.entry
    );
    let cm = b.get("ConfigMap", CONFIG_MAP)?;
    assert_eq!(cm["metadata"]["namespace"], NS);
    assert_eq!(cm["metadata"]["labels"]["llamastack.io/watch"], "true");
    let flags: Value = serde_yaml::from_str(
        cm["data"]["featureFlags"]
            .as_str()
            .context("featureFlags")?,
    )?;
    assert_eq!(flags, json!({"enableNetworkPolicy": {"enabled": false}}));
    let overrides: Value = serde_yaml::from_str(
        cm["data"]["image-overrides"]
            .as_str()
            .context("image-overrides")?,
    )
    .context("image-overrides must be valid YAML")?;
    ensure!(
        overrides.is_object(),
        "image-overrides must be a YAML map, got {overrides}"
    );
    Ok(())
}

/// Every namespaced object lives in the operator namespace.
fn check_namespaces(b: &Build) -> Result<()> {
    let cluster_scoped = [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    for d in &b.docs {
        let ns = &d["metadata"]["namespace"];
        if cluster_scoped.contains(&kind(d)) {
            ensure!(ns.is_null(), "{} {} has namespace {ns}", kind(d), name(d));
        } else {
            assert_eq!(ns, NS, "{} {}", kind(d), name(d));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The builds

#[test]
fn default_install_builds_with_service_webhooks_and_operator_certificates() -> Result<()> {
    let b = build("default")?;
    assert_eq!(b.objects(), default_objects());
    check_namespaces(&b)?;
    check_webhooks(&b, &Endpoint::Service)?;
    check_crd(&b, &Endpoint::Service)?;
    check_operator_deployment(&b)?;
    check_rbac(&b)?;
    check_namespace_and_config(&b)?;

    // The operator issues the certificate itself: nothing mounted, nothing annotated.
    let f = operator_flags(b.deployment()?)?;
    assert_eq!(flag(&f, "cert-mode"), Some("operator"));
    let volumes = &b.deployment()?["spec"]["template"]["spec"]["volumes"];
    ensure!(
        !volumes.to_string().contains(CERT_SECRET),
        "deploy/default mounts the certificate Secret: {volumes}"
    );
    for d in &b.docs {
        ensure!(
            d["metadata"]["annotations"][INJECT_CA].is_null(),
            "deploy/default: {} {} asks cert-manager for a CA",
            kind(d),
            name(d)
        );
    }
    Ok(())
}

#[test]
fn cert_manager_overlay_injects_the_ca_and_runs_with_external_certificates() -> Result<()> {
    let b = build("cert-manager")?;
    let mut expected = default_objects();
    expected.extend(set(&[
        ("Issuer", "llama-stack-operator-selfsigned"),
        ("Certificate", WEBHOOK_SERVICE),
    ]));
    assert_eq!(b.objects(), expected);
    check_namespaces(&b)?;
    check_webhooks(&b, &Endpoint::Service)?;
    check_crd(&b, &Endpoint::Service)?;
    check_operator_deployment(&b)?;
    check_rbac(&b)?;
    check_namespace_and_config(&b)?;

    // The Certificate for the webhook Service, from a self-signed Issuer.
    let cert = b.get("Certificate", WEBHOOK_SERVICE)?;
    assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
    assert_eq!(cert["spec"]["secretName"], CERT_SECRET);
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!([
            format!("{WEBHOOK_SERVICE}.{NS}.svc"),
            format!("{WEBHOOK_SERVICE}.{NS}.svc.cluster.local")
        ])
    );
    let issuer_ref = &cert["spec"]["issuerRef"];
    assert_eq!(issuer_ref["kind"], "Issuer");
    let issuer = b.get(
        "Issuer",
        issuer_ref["name"].as_str().context("issuerRef.name")?,
    )?;
    ensure!(issuer["spec"]["selfSigned"].is_object(), "Issuer {issuer}");

    // CA injection into both webhook configurations and the CRD, naming that Certificate.
    let inject = format!("{NS}/{}", name(cert));
    for (k, n) in [
        ("MutatingWebhookConfiguration", MUTATING),
        ("ValidatingWebhookConfiguration", VALIDATING),
        ("CustomResourceDefinition", CRD),
    ] {
        assert_eq!(
            b.get(k, n)?["metadata"]["annotations"][INJECT_CA],
            inject.as_str(),
            "{k} {n}"
        );
    }

    // The operator reads the certificate cert-manager writes.
    let d = b.deployment()?;
    let f = operator_flags(d)?;
    assert_eq!(flag(&f, "cert-mode"), Some("external"), "{f:?}");
    let pod = &d["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["mountPath"] == CERT_DIR))
        .with_context(|| format!("nothing mounted at {CERT_DIR}"))?;
    assert_eq!(mount["readOnly"], true, "{mount}");
    let volume = pod["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == mount["name"]))
        .context("the certificate volume")?;
    assert_eq!(volume["secret"]["secretName"], CERT_SECRET, "{volume}");
    Ok(())
}

#[test]
fn local_install_calls_the_operator_process_by_url() -> Result<()> {
    let b = build("local")?;
    assert_eq!(
        b.objects(),
        set(&[
            ("Namespace", NS),
            ("CustomResourceDefinition", CRD),
            ("ConfigMap", CONFIG_MAP),
            ("MutatingWebhookConfiguration", MUTATING),
            ("ValidatingWebhookConfiguration", VALIDATING),
        ])
    );
    check_namespaces(&b)?;
    check_webhooks(&b, &Endpoint::Url)?;
    check_crd(&b, &Endpoint::Url)?;
    check_namespace_and_config(&b)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Against the API server

/// `kubectl get` of these objects: the ones that exist (kubectl prints nothing, one object
/// or a List).
fn existing(list: &Value) -> Result<Vec<Value>> {
    let out = kubectl(
        &["get", "-f", "-", "--ignore-not-found", "-o", "json"],
        Some(&list.to_string()),
    )?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(&out).context("kubectl get -o json")?;
    Ok(match v["items"].as_array() {
        Some(items) if kind(&v) == "List" => items.clone(),
        _ => vec![v],
    })
}

fn key(v: &Value) -> (String, String, String) {
    (
        kind(v).to_string(),
        v["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name(v).to_string(),
    )
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Lines of kubectl output that report a server-side dry run of one object.
fn dry_run_lines(out: &str) -> usize {
    out.lines()
        .filter(|l| l.ends_with("(server dry run)"))
        .count()
}

/// The in-cluster install as the API server sees it, without installing it: each object
/// that does not exist yet goes through a server-side apply dry run (what
/// `kubectl apply --server-side -k deploy/default` does on a fresh cluster); each that
/// exists (the CRD and perhaps the webhook configurations, put there by other tests with
/// their own settings) through a dry-run replace, so the install's object is validated as
/// a whole rather than merged with fields other tests own. A client-side apply cannot
/// install this CRD at all: its last-applied annotation would exceed 256 KiB.
#[tokio::test]
async fn default_install_passes_a_server_side_dry_run() -> Result<()> {
    let client = client().await?;
    let b = build("default")?;
    server_side_dry_run(&client, &b).await
}

/// A Pod as the operator Deployment of `entry` would create it.
fn operator_pod(entry: &'static str, pod_name: &str) -> Result<Value> {
    let b = build(entry)?;
    let template = &b.deployment()?["spec"]["template"];
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }))
}

fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

/// Pod Security admission judges Pods (not Deployments): the operator's pod template, in
/// both in-cluster variants, is admitted into a namespace that enforces `restricted`. A
/// pod that escalates privileges is refused there first, so the admission is known to be
/// enforcing.
#[tokio::test]
async fn operator_pod_meets_the_restricted_pod_security_standard() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "deploy-psa").await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest"}}})),
        )
        .await?;
    // The pod runs as this ServiceAccount; the ServiceAccount admission plugin wants it to exist.
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": OPERATOR}}))?;
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await?;
    let pods: Api<Pod> = ns.api();

    // The negative control, retried until the namespace's label has reached the admission
    // plugin (it reads namespaces from an informer).
    let mut escalating = operator_pod("default", &unique_name("escalating"))?;
    escalating["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    let escalating: Pod = serde_json::from_value(escalating)?;
    let refusal = eventually(
        "restricted Pod Security to refuse a privilege-escalating pod",
        Duration::from_secs(30),
        || async {
            match pods.create(&dry_run(), &escalating).await {
                Ok(_) => Ok(None),
                Err(llsd_test_support::kube::Error::Api(e)) if e.code == 403 => Ok(Some(e.message)),
                Err(e) => Err(e.into()),
            }
        },
    )
    .await?;
    ensure!(
        refusal.contains("violates PodSecurity") && refusal.contains("allowPrivilegeEscalation"),
        "refused for another reason: {refusal}"
    );

    for entry in ["default", "cert-manager"] {
        let pod: Pod = serde_json::from_value(operator_pod(entry, &unique_name("operator"))?)?;
        pods.create(&dry_run(), &pod).await.with_context(|| {
            format!(
                "the operator pod of deploy/{entry} is not admitted into a restricted namespace"
            )
        })?;
    }
    ns.delete().await
}

// ---------------------------------------------------------------------------------------
// The single-file release manifest (issue 9): deploy/release/operator.yaml, written by
// `make release-manifest`.

const RELEASE: &str = "release/operator.yaml";

/// The committed release manifest, split into its header comment and the YAML after it.
fn release_manifest() -> Result<(String, String)> {
    let path = deploy_path(RELEASE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {path:?}: run `make release-manifest` and commit the result")
    })?;
    let mut header_len = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') {
            break;
        }
        header_len += line.len();
    }
    let (header, body) = text.split_at(header_len);
    Ok((header.to_string(), body.to_string()))
}

/// The committed release manifest is exactly `kubectl kustomize deploy/default` (after a
/// header comment that says so): a change under deploy/ without `make release-manifest`
/// fails here.
#[test]
fn release_manifest_is_the_kustomize_build_of_the_default_install() -> Result<()> {
    let (header, body) = release_manifest()?;
    for says in ["kubectl kustomize deploy/default", "make release-manifest"] {
        ensure!(
            header.contains(says),
            "deploy/{RELEASE}: the header comment does not mention `{says}`:\n{header}"
        );
    }
    let path = deploy_path("default");
    let path = path.to_str().context("a UTF-8 repository path")?;
    let built = kubectl(&["kustomize", path], None)?;
    if body != built {
        let line = body
            .lines()
            .zip(built.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| body.lines().count().min(built.lines().count()));
        bail!(
            "deploy/{RELEASE} differs from `kubectl kustomize deploy/default` (first difference \
             at line {} after the header): run `make release-manifest` and commit the result",
            line + 1
        );
    }
    let b = Build {
        entry: RELEASE,
        docs: yaml_docs(&body)?,
    };
    assert_eq!(b.objects(), default_objects(), "deploy/{RELEASE}");
    Ok(())
}

/// As `default_install_passes_a_server_side_dry_run`, for any build: each object that does
/// not exist yet goes through a server-side apply dry run, each that exists through a dry-run
/// replace; nothing is installed (the operator namespace excepted, see the top of this file).
async fn server_side_dry_run(client: &llsd_test_support::kube::Client, b: &Build) -> Result<()> {
    let ns: Namespace = serde_json::from_value(b.get("Namespace", NS)?.clone())?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(llsd_test_support::kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).context(format!("creating namespace {NS}")),
    }

    let live: BTreeMap<_, _> = existing(&list(b.docs.clone()))?
        .into_iter()
        .map(|v| (key(&v), v))
        .collect();
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for d in &b.docs {
        match live.get(&key(d)) {
            Some(l) => {
                let mut d = d.clone();
                d["metadata"]["resourceVersion"] = l["metadata"]["resourceVersion"].clone();
                present.push(d);
            }
            None => absent.push(d.clone()),
        }
    }
    ensure!(
        live.contains_key(&key(b.get("Namespace", NS)?)),
        "namespace {NS} was not found after creating it"
    );

    let absent_keys: Vec<_> = absent.iter().map(key).collect();
    if !absent.is_empty() {
        let n = absent.len();
        let out = kubectl(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=llsd-deploy-test",
                "-f",
                "-",
            ],
            Some(&list(absent).to_string()),
        )?;
        assert_eq!(
            dry_run_lines(&out),
            n,
            "deploy/{}: kubectl apply said:\n{out}",
            b.entry
        );
    }
    if !present.is_empty() {
        let n = present.len();
        let out = kubectl(
            &["replace", "--dry-run=server", "-f", "-"],
            Some(&list(present).to_string()),
        )?;
        assert_eq!(
            dry_run_lines(&out),
            n,
            "deploy/{}: kubectl replace said:\n{out}",
            b.entry
        );
    }

    let after: BTreeSet<_> = existing(&list(b.docs.clone()))?.iter().map(key).collect();
    for k in absent_keys {
        ensure!(!after.contains(&k), "the dry run created {k:?}");
    }
    Ok(())
}

/// The committed release manifest, as a user would `kubectl apply --server-side -f` it,
/// passes a server-side dry run against the real API server.
#[tokio::test]
async fn release_manifest_passes_a_server_side_dry_run() -> Result<()> {
    let client = client().await?;
    let (_, body) = release_manifest()?;
    let b = Build {
        entry: RELEASE,
        docs: yaml_docs(&body).with_context(|| format!("parsing deploy/{RELEASE}"))?,
    };
    ensure!(!b.docs.is_empty(), "deploy/{RELEASE} holds no objects");
    server_side_dry_run(&client, &b).await
}
