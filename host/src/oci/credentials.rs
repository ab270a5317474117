//! Registry credentials as the kubelet finds them (FR-027h, D17): the pull Secrets of the
//! pod's ServiceAccount, in `.dockerconfigjson` (or legacy `.dockercfg`) form. The best match
//! for an image is the entry with the longest matching registry path; `*.example.com` globs
//! and the Docker Hub aliases are understood. Values are never logged: `Debug` hides them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// One `auths` entry: a registry key and a user/password pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalized key: host[:port][/path], no scheme, no trailing `/` or `/v1/`.
    key: String,
    pub username: String,
    pub password: String,
    /// Which Secret it came from (for messages; never the value).
    pub source: String,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The credentials a pod would have, and which ServiceAccount they came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub service_account: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// A pull Secret that does not parse; the kubelet skips such Secrets, and so do we.
#[derive(Debug, thiserror::Error)]
#[error("pull Secret {source_name}: {problem}")]
pub struct ParseError {
    pub source_name: String,
    pub problem: String,
}

impl Credentials {
    pub fn anonymous(service_account: &str) -> Credentials {
        Credentials {
            service_account: service_account.to_string(),
            entries: Vec::new(),
        }
    }

    /// Adds the entries of one Secret's `.dockerconfigjson` (`legacy` = `.dockercfg`, which is
    /// the `auths` map without its wrapper).
    pub fn add_secret(
        &mut self,
        source_name: &str,
        bytes: &[u8],
        legacy: bool,
    ) -> Result<(), ParseError> {
        let err = |problem: String| ParseError {
            source_name: source_name.to_string(),
            problem,
        };
        let auths = if legacy {
            serde_json::from_slice::<BTreeMap<String, AuthEntry>>(bytes)
                .map_err(|e| err(format!("not a .dockercfg document ({e})")))?
        } else {
            serde_json::from_slice::<DockerConfigJson>(bytes)
                .map_err(|e| err(format!("not a .dockerconfigjson document ({e})")))?
                .auths
        };
        for (key, a) in auths {
            let (username, password) = match (a.username, a.password, a.auth) {
                (Some(u), Some(p), _) if !u.is_empty() => (u, p),
                (_, _, Some(auth)) => {
                    let decoded = STANDARD
                        .decode(auth.trim())
                        .map_err(|_| err(format!("entry {key}: auth is not base64")))?;
                    let text = String::from_utf8(decoded)
                        .map_err(|_| err(format!("entry {key}: auth is not UTF-8")))?;
                    let (u, p) = text
                        .split_once(':')
                        .ok_or_else(|| err(format!("entry {key}: auth is not user:password")))?;
                    (u.to_string(), p.to_string())
                }
                _ => continue,
            };
            self.entries.push(Entry {
                key: normalize_key(&key),
                username,
                password,
                source: source_name.to_string(),
            });
        }
        Ok(())
    }

    /// The entry for `registry`/`repository` (as `oci_client::Reference` resolves them), if any.
    pub fn for_image(&self, registry: &str, repository: &str) -> Option<&Entry> {
        let registry = canonical_host(registry);
        let target = format!("{registry}/{repository}");
        self.entries
            .iter()
            .filter(|e| key_matches(&e.key, &target))
            .max_by_key(|e| e.key.len())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `https://index.docker.io/v1/` -> `docker.io`; `quay.io/acme/` -> `quay.io/acme`.
fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    let (host, path) = match k.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (k, None),
    };
    let lower = host.to_ascii_lowercase();
    let host = canonical_host(&lower);
    match path {
        Some(p) if !p.is_empty() => format!("{host}/{p}"),
        _ => host.to_string(),
    }
}

/// Docker Hub answers under several names; credentials for any of them serve all.
fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    }
}

/// The kubelet's rule: hosts match label by label (`*` matches one label), ports must be
/// equal, and the key's path must be a prefix of the image's path at a `/` boundary.
fn key_matches(key: &str, target: &str) -> bool {
    let (khost, kpath) = key.split_once('/').unwrap_or((key, ""));
    let (thost, tpath) = target.split_once('/').unwrap_or((target, ""));
    let split_port = |h: &str| match h.rsplit_once(':') {
        Some((n, p)) => (n.to_string(), Some(p.to_string())),
        None => (h.to_string(), None),
    };
    let (kname, kport) = split_port(khost);
    let (tname, tport) = split_port(&thost.to_ascii_lowercase());
    if kport != tport {
        return false;
    }
    let kl: Vec<&str> = kname.split('.').collect();
    let tl: Vec<&str> = tname.split('.').collect();
    if kl.len() != tl.len() || !kl.iter().zip(&tl).all(|(k, t)| *k == "*" || k == t) {
        return false;
    }
    kpath.is_empty()
        || tpath == kpath
        || tpath
            .strip_prefix(kpath)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Credentials {
        let mut c = Credentials::anonymous("sa");
        c.add_secret("pull", json.as_bytes(), false)
            .expect("parses");
        c
    }

    #[test]
    fn auth_field_and_user_password_both_work() {
        let auth = STANDARD.encode("bob:s3cret:with-colon");
        let c = creds(&format!(
            r#"{{"auths":{{"reg.example:5000":{{"auth":"{auth}"}},"quay.io":{{"username":"u","password":"p"}}}}}}"#
        ));
        let e = c.for_image("reg.example:5000", "team/img").expect("match");
        assert_eq!(
            (e.username.as_str(), e.password.as_str()),
            ("bob", "s3cret:with-colon")
        );
        assert_eq!(c.for_image("quay.io", "a/b").expect("match").username, "u");
        assert!(
            c.for_image("reg.example", "team/img").is_none(),
            "port must match"
        );
        assert!(c.for_image("reg.example:5001", "team/img").is_none());
    }

    #[test]
    fn longest_path_wins_and_paths_match_at_slash() {
        let c = creds(
            r#"{"auths":{"quay.io":{"username":"all","password":"x"},"quay.io/acme":{"username":"acme","password":"y"}}}"#,
        );
        assert_eq!(
            c.for_image("quay.io", "acme/stack").expect("m").username,
            "acme"
        );
        assert_eq!(
            c.for_image("quay.io", "acmex/stack").expect("m").username,
            "all"
        );
        assert_eq!(
            c.for_image("quay.io", "other/stack").expect("m").username,
            "all"
        );
    }

    #[test]
    fn docker_hub_aliases_and_globs() {
        let c = creds(
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"x"},"*.corp.example":{"username":"glob","password":"y"}}}"#,
        );
        assert_eq!(
            c.for_image("index.docker.io", "library/busybox")
                .expect("m")
                .username,
            "hub"
        );
        assert_eq!(
            c.for_image("docker.io", "llamastack/x")
                .expect("m")
                .username,
            "hub"
        );
        assert_eq!(
            c.for_image("reg.corp.example", "a").expect("m").username,
            "glob"
        );
        assert!(
            c.for_image("a.reg.corp.example", "a").is_none(),
            "* is one label"
        );
    }

    #[test]
    fn legacy_dockercfg_and_garbage() {
        let mut c = Credentials::anonymous("sa");
        c.add_secret(
            "old",
            br#"{"reg.example":{"username":"u","password":"p"}}"#,
            true,
        )
        .expect("parses");
        assert!(c.for_image("reg.example", "x").is_some());
        let err = c
            .add_secret("bad", b"not json", false)
            .expect_err("refused");
        assert!(err.to_string().contains("pull Secret bad"), "{err}");
        let err = c
            .add_secret("bad64", br#"{"auths":{"r":{"auth":"%%%"}}}"#, false)
            .expect_err("refused");
        assert!(
            !err.to_string().contains("%%%"),
            "no value in the message: {err}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = creds(r#"{"auths":{"r.example":{"username":"user1","password":"hunter2"}}}"#);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("user1"),
            "{shown}"
        );
    }
}
