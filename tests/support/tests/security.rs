//! Issue 19, security checks as tests: what the shipped RBAC lets the operator do, asked of the
//! real API server. The operator's ServiceAccount, ClusterRole, Role and bindings from
//! `deploy/rbac` are applied under names of this test's own (a ClusterRole is cluster-wide,
//! and other tests share the cluster), and `kubectl auth can-i --list`, impersonating that
//! ServiceAccount with its groups, must print exactly the reviewed allowlist in
//! `tests/security/rbac-allowlist.txt`: in the operator's namespace and in any other.
//! And the webhook server, as the operator process serves it: plain HTTP and TLS below 1.2
//! (or 1.2 with a weak cipher) get no answer, by `openssl s_client` as the other side.
//! FAILS, never skips, without `LLSD_KUBECTL` and `KUBECONFIG` (`tests/cluster/run-tests.sh`),
//! or without `openssl` on the PATH.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail, ensure};
use llsd_test_support::{TestNamespace, client, kubectl, unique_name};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

mod common;
use common::operator::setup;

const OPERATOR: &str = "llama-stack-operator";
const ALLOWLIST: &str = include_str!("../../security/rbac-allowlist.txt");

fn rbac_objects() -> Result<Vec<Value>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rbac");
    let out = kubectl(&["kustomize", dir], None)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&out) {
        let v = Value::deserialize(doc).context("a document of kubectl kustomize deploy/rbac")?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// The operator's own RBAC objects (not the editor and viewer roles it ships for users),
/// moved into `ns` and, where cluster-scoped, renamed `cluster_name`.
fn operator_rbac(docs: Vec<Value>, ns: &str, cluster_name: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for mut d in docs {
        if d["metadata"]["name"] != OPERATOR {
            continue;
        }
        match d["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" | "Role" => d["metadata"]["namespace"] = json!(ns),
            "RoleBinding" => {
                d["metadata"]["namespace"] = json!(ns);
                d["subjects"][0]["namespace"] = json!(ns);
            }
            "ClusterRole" => d["metadata"]["name"] = json!(cluster_name),
            "ClusterRoleBinding" => {
                d["metadata"]["name"] = json!(cluster_name);
                d["roleRef"]["name"] = json!(cluster_name);
                d["subjects"][0]["namespace"] = json!(ns);
            }
            other => bail!("deploy/rbac has a {other} named {OPERATOR}; review this test"),
        }
        out.push(d);
    }
    let kinds: BTreeSet<&str> = out.iter().filter_map(|d| d["kind"].as_str()).collect();
    ensure!(
        kinds.len() == 5,
        "deploy/rbac should name the ServiceAccount, ClusterRole(Binding) and Role(Binding) \
         {OPERATOR}; found {kinds:?}"
    );
    Ok(out)
}

/// The rows of `kubectl auth can-i --list`, each `resource [non-resource URLs] [names]
/// [verbs]` with the verbs sorted (`-` for no resource).
fn can_i_rows(out: &str) -> Result<BTreeSet<String>> {
    let mut rows = BTreeSet::new();
    for line in out.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        // Four columns; the last three are bracketed lists that may hold spaces.
        let open = line
            .find('[')
            .with_context(|| format!("a row without lists: {line:?}"))?;
        let resource = line[..open].trim();
        let lists: Vec<&str> = line[open..]
            .split(']')
            .map(|s| s.trim().trim_start_matches('['))
            .collect();
        ensure!(
            lists.len() == 4 && lists[3].is_empty(),
            "a row of kubectl auth can-i --list that is not 4 columns: {line:?}"
        );
        let mut verbs: Vec<&str> = lists[2].split_whitespace().collect();
        verbs.sort_unstable();
        let row = format!(
            "{} [{}] [{}] [{}]",
            if resource.is_empty() { "-" } else { resource },
            lists[0],
            lists[1],
            verbs.join(" ")
        );
        rows.insert(row);
    }
    Ok(rows)
}

/// The allowlist's section `[name]`: one row per line, `#` comments and blank lines skipped.
fn allowlist(section: &str) -> Result<BTreeSet<String>> {
    let mut rows = BTreeSet::new();
    let mut current = None;
    for line in ALLOWLIST.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Rows start with a resource or `-`, never with `[`.
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            continue;
        }
        if current.as_deref() == Some(section) {
            rows.insert(line.to_string());
        }
    }
    ensure!(!rows.is_empty(), "the allowlist has no section [{section}]");
    Ok(rows)
}

fn compare(section: &str, granted: &BTreeSet<String>) -> Result<()> {
    let allowed = allowlist(section)?;
    let extra: Vec<&String> = granted.difference(&allowed).collect();
    let missing: Vec<&String> = allowed.difference(granted).collect();
    ensure!(
        extra.is_empty() && missing.is_empty(),
        "[{section}]: the shipped RBAC grants what the reviewed allowlist \
         (tests/security/rbac-allowlist.txt) does not say:\n  granted, not allowed: \
         {extra:#?}\n  allowed, not granted: {missing:#?}\nall granted rows:\n{}",
        granted.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

fn can_i(sa_ns: &str, in_ns: &str) -> Result<BTreeSet<String>> {
    let user = format!("system:serviceaccount:{sa_ns}:{OPERATOR}");
    let group = format!("system:serviceaccounts:{sa_ns}");
    let out = kubectl(
        &[
            "auth",
            "can-i",
            "--list",
            "--as",
            &user,
            "--as-group",
            "system:serviceaccounts",
            "--as-group",
            &group,
            "-n",
            in_ns,
        ],
        None,
    )?;
    can_i_rows(&out)
}

/// Issue 19 §3: the operator's effective permissions with the shipped RBAC equal the
/// reviewed allowlist, in its own namespace (the Role: Lease, its certificate Secret, its
/// ConfigMap) and in every other (the ClusterRole).
#[tokio::test]
async fn operator_permissions_equal_the_reviewed_allowlist() -> Result<()> {
    let client = client().await?;
    let op_ns = TestNamespace::create(&client, "sec-operator").await?;
    let other = TestNamespace::create(&client, "sec-other").await?;
    let cluster_name = unique_name("llsd-sec-rbac");
    let objects = operator_rbac(rbac_objects()?, op_ns.name(), &cluster_name)?;
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    kubectl(&["apply", "-f", "-"], Some(&list.to_string()))?;

    let result = (|| {
        compare("operator namespace", &can_i(op_ns.name(), op_ns.name())?)?;
        compare("any other namespace", &can_i(op_ns.name(), other.name())?)
    })();
    let cleanup = kubectl(
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            &cluster_name,
            "--ignore-not-found",
        ],
        None,
    );
    op_ns.delete().await?;
    other.delete().await?;
    result.and(cleanup.map(drop))
}

/// `openssl s_client` against the webhook port with `args`: (exit success, all output).
fn s_client(port: u16, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running openssl s_client (the security tests need the openssl CLI)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Issue 19 §3: the webhook server refuses plain HTTP and weak TLS. TLS 1.2 and 1.3 with a
/// strong suite complete (the control: the same client can reach it), TLS 1.0 and 1.1 are
/// answered with an alert, TLS 1.2 offering only CBC/RSA key exchange suites with
/// handshake_failure, and a plain HTTP request gets no HTTP answer.
#[tokio::test]
async fn webhook_server_refuses_plain_http_and_weak_tls() -> Result<()> {
    let (_client, ns, op) = setup("sec-tls", &[]).await?;
    let port = op.webhook_port;
    let result = (|| -> Result<()> {
        for version in ["-tls1_2", "-tls1_3"] {
            let (ok, out) = s_client(port, &[version, "-brief"])?;
            ensure!(
                ok && out.contains("Protocol version"),
                "openssl s_client {version} could not complete a handshake, so the refusals \
                 below prove nothing:\n{out}"
            );
        }
        // SECLEVEL=0 lets this client offer the old versions at all: the refusal must be
        // an alert from the server ("SSL alert number" in what openssl read), with no cipher
        // agreed, not the client's own policy.
        for version in ["-tls1", "-tls1_1"] {
            let (ok, out) = s_client(port, &[version, "-cipher", "DEFAULT@SECLEVEL=0"])?;
            ensure!(
                !ok && out.contains("SSL alert number") && out.contains("Cipher is (NONE)"),
                "TLS {version} was not refused by the server with an alert:\n{out}"
            );
        }
        let (ok, out) = s_client(
            port,
            &[
                "-tls1_2",
                "-cipher",
                "AES128-SHA:AES256-SHA:DES-CBC3-SHA@SECLEVEL=0",
            ],
        )?;
        ensure!(
            !ok && out.contains("alert handshake failure") && out.contains("Cipher is (NONE)"),
            "TLS 1.2 with only weak suites was not refused with handshake_failure:\n{out}"
        );

        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        // The server may close the connection on the first bytes (a broken pipe here), and a
        // reset or a timeout is a refusal too: what must not come is an HTTP answer.
        let _ = write!(
            tcp,
            "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        ensure!(
            !answer.starts_with(b"HTTP/"),
            "a plain HTTP request got an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        Ok(())
    })();
    let result = result.with_context(|| op.log_text());
    ns.delete().await?;
    result
}

#[test]
fn can_i_rows_parse_resources_urls_names_and_verbs() -> Result<()> {
    let out = "Resources                Non-Resource URLs   Resource Names   Verbs\n\
               secrets                  []                  [cert]           [update get patch]\n\
               \x20                        [/healthz]          []               [get]\n\
               leases.coordination.k8s.io []                []               [get list watch]\n";
    let rows = can_i_rows(out)?;
    let want: BTreeSet<String> = [
        "secrets [] [cert] [get patch update]",
        "- [/healthz] [] [get]",
        "leases.coordination.k8s.io [] [] [get list watch]",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    ensure!(rows == want, "{rows:#?}");
    Ok(())
}

/// Issue 19 §3: `make test`'s last step (`make secret-scan`) takes the Secret values from the
/// API server's audit log and scans every other write's body there, so both must be logged
/// with their bodies (tests/cluster/up's audit policy): a Secret's value is read back from its
/// write, and the ConfigMap written beside it is scanned and found clean.
#[tokio::test]
async fn the_audit_log_keeps_write_bodies_for_the_run_wide_secret_scan() -> Result<()> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::PostParams;
    use llsd_test_support::secret_scan::{AuditWrite, Scanner, audit_write};
    use llsd_test_support::{eventually, k8s_openapi, kube};

    let client = client().await?;
    let ns = TestNamespace::create(&client, "audit-bodies").await?;
    let offset = common::operator::audit_offset()?;
    let value = unique_name("audit-probe-value");
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "probe"}, "stringData": {"token": value}}),
    )?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "probe"}, "data": {"note": "no credential here"}}),
    )?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    let (values, cm_body) = eventually(
        "both writes in the audit log, with their bodies",
        Duration::from_secs(20),
        || async {
            let text = common::operator::audit_since(offset)?;
            let (mut values, mut cm_body) = (Vec::new(), None);
            for line in text.lines().filter(|l| l.contains(ns.name())) {
                match audit_write(line, None) {
                    Some(AuditWrite::Secret(v)) => values.extend(v),
                    Some(AuditWrite::Other { place, body }) if place.contains("configmaps") => {
                        cm_body = Some(body)
                    }
                    _ => {}
                }
            }
            Ok(cm_body.filter(|_| !values.is_empty()).map(|b| (values, b)))
        },
    )
    .await?;
    ensure!(
        values.iter().any(|v| v.value == value),
        "the Secret's write in the audit log does not carry its value: {values:?}"
    );
    let scanner = Scanner::new(values)?;
    ensure!(
        scanner.scan(&cm_body, "the ConfigMap").is_empty(),
        "the clean ConfigMap was reported: {cm_body}"
    );
    ensure!(
        !scanner
            .scan(&format!("{cm_body} {value}"), "a leak")
            .is_empty(),
        "a body holding the value was not reported"
    );
    ns.delete().await
}
