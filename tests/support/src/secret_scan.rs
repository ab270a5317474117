//! The run-wide Secret scan (issue 19 §3): after the whole `make test`, no value of any Secret
//! written during the run may appear in another object written to the API servers
//! (ConfigMaps, Events, CR status, Deployments, webhook configurations, …) nor in any operator
//! log the run wrote.
//!
//! Test namespaces are deleted as tests end, so the objects cannot be listed afterwards; the
//! API servers' audit logs are the record instead. `tests/cluster/up` logs every write with its
//! request body (audit level `Request`): the Secrets' own writes give the values, every other
//! write is scanned. Each value is looked for as written, JSON-escaped (a log's `Debug`
//! rendering), in base64, and line by line when it has several lines (a PEM key cut into a
//! log line). Registry credentials (`.dockerconfigjson`) are looked for per password/token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::Value;

/// Values shorter than this are words or flags (`true`, a user name), not credentials.
pub const MIN_VALUE_LEN: usize = 8;

/// One line of a multi-line value is looked for on its own from this length.
const MIN_LINE_LEN: usize = 16;

/// A Secret value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretValue {
    /// `<namespace>/<name> <key>` (and the field inside a registry credential).
    pub origin: String,
    pub value: String,
}

/// A Secret value found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub origin: String,
    pub place: String,
}

/// What one audit log line says, for the scan.
#[derive(Debug)]
pub enum AuditWrite {
    /// A write to a Secret: the values it carries.
    Secret(Vec<SecretValue>),
    /// Any other write with a body: where, and the body as JSON text.
    Other { place: String, body: String },
}

/// Reads an audit log line: `None` for lines that are not a completed write with a body,
/// or that were received before `since` (`YYYY-MM-DDTHH:MM:SS`, UTC; compared to the second).
pub fn audit_write(line: &str, since: Option<&str>) -> Option<AuditWrite> {
    let e: Value = serde_json::from_str(line).ok()?;
    if e["stage"] != "ResponseComplete" {
        return None;
    }
    if !matches!(e["verb"].as_str(), Some("create" | "update" | "patch")) {
        return None;
    }
    if let (Some(since), Some(at)) = (since, e["requestReceivedTimestamp"].as_str())
        && at.get(..19).unwrap_or(at) < since.get(..19).unwrap_or(since)
    {
        return None;
    }
    let body = e.get("requestObject").filter(|b| !b.is_null())?;
    let r = &e["objectRef"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (resource, ns, name) = (s(&r["resource"]), s(&r["namespace"]), s(&r["name"]));
    if resource == "secrets" && r["subresource"].is_null() {
        let name = if name.is_empty() {
            s(&body["metadata"]["name"])
        } else {
            name
        };
        return Some(AuditWrite::Secret(secret_values(
            &format!("{ns}/{name}"),
            body,
        )));
    }
    let sub = r["subresource"]
        .as_str()
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    let place = format!(
        "{} {resource}{sub} {ns}/{name} by {}",
        s(&e["verb"]),
        e["userAgent"].as_str().unwrap_or("?")
    );
    Some(AuditWrite::Other {
        place,
        body: body.to_string(),
    })
}

/// The credential values in a Secret's body (`data`, base64, and `stringData`); public
/// certificates and short values are left out.
pub fn secret_values(origin: &str, body: &Value) -> Vec<SecretValue> {
    let mut out = Vec::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = body["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let bytes = b64.decode(v.as_str()?).ok()?;
            Some((k, String::from_utf8(bytes).ok()?))
        });
    let string_data = body["stringData"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())));
    for (key, value) in data.chain(string_data) {
        if COORDINATES.contains(&key.to_ascii_lowercase().as_str()) {
            continue;
        }
        let origin = format!("{origin} {key}");
        if key == ".dockerconfigjson" || key == ".dockercfg" {
            out.extend(registry_credentials(&origin, &value));
        }
        if let Some(password) = uri_password(&value) {
            out.push(SecretValue {
                origin: format!("{origin} (its password)"),
                value: password.to_string(),
            });
        }
        if value.trim().len() >= MIN_VALUE_LEN && !is_public_certificate(&value) {
            out.push(SecretValue { origin, value });
        }
    }
    out
}

/// Keys of a database Secret (CloudNativePG's app Secret, the operator's `<cr>-storage-sql`)
/// that locate the server rather than open it: the same host, user and database names are in
/// Services, configs and the CRD's own text (`llamastack`), where they are no leak.
const COORDINATES: &[&str] = &[
    "host", "hostname", "port", "user", "username", "dbname", "db", "database",
];

/// The password of `scheme://user:password@host…`, long enough to look for.
fn uri_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let userinfo = rest.split(['/', '?', '#']).next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (password.len() >= MIN_VALUE_LEN).then_some(password)
}

/// A PEM file holding only certificates is public (it is in every webhook's caBundle).
fn is_public_certificate(value: &str) -> bool {
    value.contains("-----BEGIN CERTIFICATE-----") && !value.contains("PRIVATE KEY")
}

/// The password, token and `auth` of every registry in a `.dockerconfigjson`.
fn registry_credentials(origin: &str, text: &str) -> Vec<SecretValue> {
    let Ok(config) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let auths = config.get("auths").unwrap_or(&config);
    let mut out = Vec::new();
    for (registry, entry) in auths.as_object().into_iter().flatten() {
        for field in ["password", "auth", "identitytoken", "registrytoken"] {
            if let Some(v) = entry[field].as_str().filter(|v| v.len() >= MIN_VALUE_LEN) {
                out.push(SecretValue {
                    origin: format!("{origin} {registry} {field}"),
                    value: v.to_string(),
                });
            }
        }
    }
    out
}

/// The strings each value is looked for as.
fn needles(value: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([
        value.to_string(),
        base64::engine::general_purpose::STANDARD.encode(value),
    ]);
    let json = Value::String(value.to_string()).to_string();
    out.insert(json[1..json.len() - 1].to_string());
    if value.trim().contains('\n') {
        out.extend(
            value
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= MIN_LINE_LEN && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    out
}

/// The values to look for, compiled into one automaton.
pub struct Scanner {
    values: Vec<SecretValue>,
    automaton: AhoCorasick,
    /// For each pattern of the automaton, the index of its value.
    owner: Vec<usize>,
}

impl Scanner {
    pub fn new(values: impl IntoIterator<Item = SecretValue>) -> Result<Scanner> {
        let values: Vec<SecretValue> = values
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (mut patterns, mut owner) = (Vec::new(), Vec::new());
        for (i, v) in values.iter().enumerate() {
            for n in needles(&v.value) {
                patterns.push(n);
                owner.push(i);
            }
        }
        let automaton = AhoCorasick::new(&patterns).context("building the scan's automaton")?;
        Ok(Scanner {
            values,
            automaton,
            owner,
        })
    }

    pub fn values(&self) -> &[SecretValue] {
        &self.values
    }

    /// The values found in `text`, each once, as findings at `place`.
    pub fn scan(&self, text: &str, place: &str) -> Vec<Finding> {
        let found: BTreeSet<usize> = self
            .automaton
            .find_overlapping_iter(text)
            .map(|m| self.owner[m.pattern().as_usize()])
            .collect();
        found
            .into_iter()
            .map(|i| Finding {
                origin: self.values[i].origin.clone(),
                place: place.to_string(),
            })
            .collect()
    }
}

/// What a whole scan looked at and found.
#[derive(Debug, Default)]
pub struct Report {
    pub audit_files: Vec<PathBuf>,
    pub secret_writes: usize,
    pub values: usize,
    pub writes_scanned: usize,
    pub write_bytes: usize,
    pub log_files: Vec<PathBuf>,
    pub log_bytes: usize,
    pub findings: Vec<Finding>,
}

/// Scans the audit logs (`audit*.log` in each of `audit_dirs`) and every file of `logs`
/// (files, or directories whose files are all read).
pub fn scan(audit_dirs: &[PathBuf], logs: &[PathBuf], since: Option<&str>) -> Result<Report> {
    let mut report = Report::default();
    let mut values = Vec::new();
    let mut writes = Vec::new();
    for dir in audit_dirs {
        for path in files_in(dir)? {
            let is_audit = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit") && n.ends_with(".log"));
            if !is_audit {
                continue;
            }
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            for line in String::from_utf8_lossy(&text).lines() {
                match audit_write(line, since) {
                    Some(AuditWrite::Secret(v)) => {
                        report.secret_writes += 1;
                        values.extend(v);
                    }
                    Some(AuditWrite::Other { place, body }) => writes.push((place, body)),
                    None => {}
                }
            }
            report.audit_files.push(path);
        }
    }
    let scanner = Scanner::new(values)?;
    report.values = scanner.values().len();
    for (place, body) in &writes {
        report.write_bytes += body.len();
        report.findings.extend(scanner.scan(body, place));
    }
    report.writes_scanned = writes.len();
    for log in logs {
        let files = if log.is_dir() {
            files_in(log)?
        } else {
            vec![log.clone()]
        };
        for path in files {
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let text = String::from_utf8_lossy(&text);
            report.log_bytes += text.len();
            report
                .findings
                .extend(scanner.scan(&text, &format!("log {}", path.display())));
            report.log_files.push(path);
        }
    }
    Ok(report)
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audit_line(verb: &str, resource: &str, sub: Option<&str>, body: Value) -> String {
        json!({
            "stage": "ResponseComplete", "verb": verb,
            "requestReceivedTimestamp": "2026-12-08T02:00:00.123456Z",
            "userAgent": "llama-stack-operator/0.1.0",
            "objectRef": {"resource": resource, "namespace": "ns", "name": "x", "subresource": sub},
            "requestObject": body,
        })
        .to_string()
    }

    fn values_of(line: &str) -> Vec<String> {
        match audit_write(line, None) {
            Some(AuditWrite::Secret(v)) => v.into_iter().map(|v| v.value).collect(),
            other => panic!("not a Secret write: {other:?}"),
        }
    }

    #[test]
    fn a_secrets_credentials_are_read_from_data_and_string_data_leaving_out_certificates_and_coordinates()
     {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        let line = audit_line(
            "create",
            "secrets",
            None,
            json!({"data": {"api-key": b64("sk-test-0123456789"), "tls.key": b64(key),
                            "ca.crt": b64(cert), "flag": b64("true"),
                            "user": b64("llamastack"), "host": b64("db.databases.svc")},
                   "stringData": {"token": "tok-abcdefgh",
                                  "uri": "postgresql://llamastack:pw-0123456789@db:5432/app"}}),
        );
        let mut got = values_of(&line);
        got.sort();
        assert_eq!(
            got,
            vec![
                key.to_string(),
                "postgresql://llamastack:pw-0123456789@db:5432/app".into(),
                "pw-0123456789".into(),
                "sk-test-0123456789".into(),
                "tok-abcdefgh".into()
            ]
        );
    }

    #[test]
    fn registry_credentials_are_looked_for_per_password_and_auth() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({"auths": {"127.0.0.1:5000": {
            "username": "bob", "password": "hunter2-hunter2", "auth": b64("bob:hunter2-hunter2")}}});
        let line = audit_line(
            "create",
            "secrets",
            None,
            json!({"data": {".dockerconfigjson": b64(&config.to_string())}}),
        );
        let got = values_of(&line);
        assert!(got.contains(&"hunter2-hunter2".to_string()), "{got:?}");
        assert!(got.contains(&b64("bob:hunter2-hunter2")), "{got:?}");
    }

    #[test]
    fn reads_deletes_and_earlier_writes_are_not_scanned() {
        let line = audit_line("get", "configmaps", None, json!({"data": {}}));
        assert!(audit_write(&line, None).is_none());
        let line = audit_line("create", "configmaps", None, json!({"data": {}}));
        assert!(audit_write(&line, Some("2026-12-08T02:00:01Z")).is_none());
        assert!(audit_write(&line, Some("2026-12-08T02:00:00Z")).is_some());
        let line = audit_line("create", "configmaps", None, Value::Null);
        assert!(audit_write(&line, None).is_none());
    }

    #[test]
    fn a_value_is_found_as_written_escaped_in_base64_and_by_the_line() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        let scanner = Scanner::new([
            SecretValue {
                origin: "ns/a api-key".into(),
                value: "sk-test-0123456789".into(),
            },
            SecretValue {
                origin: "ns/a tls.key".into(),
                value: key.into(),
            },
        ])
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("sk-test-0123456789");
        // As a `Debug` field of a log line: newlines escaped.
        let escaped = format!("key={key:?}");
        for (text, origin) in [
            ("key=sk-test-0123456789 more", "ns/a api-key"),
            (b64.as_str(), "ns/a api-key"),
            (escaped.as_str(), "ns/a tls.key"),
            ("line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC only", "ns/a tls.key"),
        ] {
            let found = scanner.scan(text, "here");
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert_eq!(found[0].origin, origin, "{text}");
        }
        assert!(
            scanner
                .scan(
                    "sk-test-012345678 (one short) and -----BEGIN PRIVATE KEY-----",
                    "here"
                )
                .is_empty()
        );
    }

    #[test]
    fn a_status_patch_carrying_a_value_is_a_finding_naming_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let lines = [
            audit_line(
                "create",
                "secrets",
                None,
                json!({"data": {"k": b64("s3cr3t-value-1")}}),
            ),
            audit_line(
                "patch",
                "llamastackdistributions",
                Some("status"),
                json!({"status": {"message": "bad key s3cr3t-value-1"}}),
            ),
            audit_line(
                "create",
                "events",
                None,
                json!({"message": "nothing to see"}),
            ),
        ];
        std::fs::write(dir.path().join("audit.log"), lines.join("\n")).unwrap();
        std::fs::write(dir.path().join("other.txt"), "s3cr3t-value-1").unwrap();
        let logs = tempfile::tempdir().unwrap();
        std::fs::write(
            logs.path().join("op.log"),
            "INFO ok\nDEBUG token=s3cr3t-value-1\n",
        )
        .unwrap();
        let report = scan(
            &[dir.path().to_path_buf()],
            &[logs.path().to_path_buf()],
            None,
        )
        .unwrap();
        assert_eq!(
            (report.secret_writes, report.values, report.writes_scanned),
            (1, 1, 2)
        );
        let places: Vec<&str> = report.findings.iter().map(|f| f.place.as_str()).collect();
        assert_eq!(places.len(), 2, "{places:?}");
        assert!(
            places[0]
                .starts_with("patch llamastackdistributions/status ns/x by llama-stack-operator/"),
            "{places:?}"
        );
        assert!(
            places[1].starts_with("log ") && places[1].ends_with("op.log"),
            "{places:?}"
        );
    }
}
