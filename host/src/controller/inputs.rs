//! What the reconcile gathers from the cluster for the plugin and the pods: the
//! overrideConfig content (D11), the referenced Secrets (FR-073), the Secret derived from a
//! postgres connection string (D9) and the CA bundle (FR-063, D14). Secret values are read
//! only to split a connection string; they never reach a log, an Event or the status.

use super::children::{CA_BUNDLE_KEY, CONFIG_KEY};
use super::error::{Error, api};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use llama_stack_config::{DerivedSecret, SecretEnv};
use std::collections::{BTreeMap, BTreeSet};

/// A problem the user has to fix: a condition reason and an actionable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    fn new(reason: &'static str, message: String) -> Problem {
        Problem { reason, message }
    }
}

/// The overrideConfig ConfigMap's `config.yaml` (FR-074).
pub async fn override_config(
    configmaps: &Api<ConfigMap>,
    ns: &str,
    name: &str,
) -> Result<Result<String, Problem>, Error> {
    let cm = configmaps
        .get_opt(name)
        .await
        .map_err(api("read", format!("ConfigMap {ns}/{name}")))?;
    Ok(match cm {
        None => Err(Problem::new(
            "ConfigMapNotFound",
            format!(
                "ConfigMap \"{name}\" not found in namespace \"{ns}\". Referenced by: spec.overrideConfig.configMapName"
            ),
        )),
        Some(cm) => match cm.data.and_then(|mut d| d.remove(CONFIG_KEY)) {
            Some(yaml) => Ok(yaml),
            None => Err(Problem::new(
                "ConfigMapKeyMissing",
                format!(
                    "Key \"{CONFIG_KEY}\" not found in ConfigMap \"{name}\" in namespace \"{ns}\". Referenced by: spec.overrideConfig.configMapName"
                ),
            )),
        },
    })
}

/// The outcome of looking up every Secret the generated config references.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretCheck {
    /// Distinct (Secret, key) references of the spec.
    pub count: usize,
    /// The first missing Secret or key, as the SecretsResolved condition says it.
    pub problem: Option<Problem>,
    /// The Secrets derived by the operator (D9), with their content.
    pub derived: Vec<Secret>,
    /// What the user should know about the derivation (names only, never values).
    pub warnings: Vec<String>,
}

/// Checks that each env var's Secret and key exist (derived Secrets are checked through their
/// source) and splits connection strings into the derived Secrets' data.
pub async fn secrets(
    secrets: &Api<Secret>,
    ns: &str,
    env: &[SecretEnv],
    derived: &[DerivedSecret],
) -> Result<SecretCheck, Error> {
    let derived_names: BTreeSet<&str> = derived.iter().map(|d| d.name.as_str()).collect();
    // (secret, key, field path) in a stable order.
    let mut refs: Vec<(String, String, String)> = env
        .iter()
        .filter(|e| !derived_names.contains(e.secret_name.as_str()))
        .map(|e| {
            (
                e.secret_name.clone(),
                e.secret_key.clone(),
                format!("env {}", e.name),
            )
        })
        .collect();
    refs.extend(derived.iter().map(|d| {
        (
            d.source_secret.clone(),
            d.source_key.clone(),
            "spec.storage.sql.connectionString".to_string(),
        )
    }));
    refs.sort();
    refs.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut cache: BTreeMap<String, Option<Secret>> = BTreeMap::new();
    let mut problem = None;
    for (name, key, path) in &refs {
        if !cache.contains_key(name) {
            let s = secrets
                .get_opt(name)
                .await
                .map_err(api("read", format!("Secret {ns}/{name}")))?;
            cache.insert(name.clone(), s);
        }
        let found = cache.get(name).and_then(|s| s.as_ref());
        let p = match found {
            None => Some(Problem::new(
                "SecretNotFound",
                format!("Secret \"{name}\" not found in namespace \"{ns}\". Referenced by: {path}"),
            )),
            Some(s) if !has_key(s, key) => Some(Problem::new(
                "SecretKeyMissing",
                format!("Key \"{key}\" not found in Secret \"{name}/{ns}\". Referenced by: {path}"),
            )),
            Some(_) => None,
        };
        if problem.is_none() {
            problem = p;
        }
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    if problem.is_none() {
        for d in derived {
            let value = cache
                .get(&d.source_secret)
                .and_then(|s| s.as_ref())
                .and_then(|s| value_of(s, &d.source_key));
            match value.as_deref().map(postgres_uri) {
                Some(Ok(data)) => {
                    let ignored = value.as_deref().map(ignored_parameters).unwrap_or_default();
                    if !ignored.is_empty() {
                        warnings.push(format!(
                            "spec.storage.sql.connectionString: the parameters {} of the connection string in Secret \
                             \"{}\" are not used: llama-stack's postgres store takes host, port, db, user and password only",
                            ignored.join(", "),
                            d.source_secret
                        ));
                    }
                    out.push(derived_secret(&d.name, data))
                }
                Some(Err(why)) => {
                    problem = Some(Problem::new(
                        "SecretInvalid",
                        format!(
                            "Key \"{}\" of Secret \"{}/{ns}\" is not a postgres connection string ({why}). Referenced by: spec.storage.sql.connectionString",
                            d.source_key, d.source_secret
                        ),
                    ));
                    break;
                }
                None => {}
            }
        }
    }
    Ok(SecretCheck {
        count: refs.len(),
        problem,
        derived: out,
        warnings,
    })
}

fn has_key(s: &Secret, key: &str) -> bool {
    s.data.as_ref().is_some_and(|d| d.contains_key(key))
        || s.string_data.as_ref().is_some_and(|d| d.contains_key(key))
}

fn value_of(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .or_else(|| s.string_data.as_ref().and_then(|d| d.get(key)).cloned())
}

fn derived_secret(name: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        string_data: None,
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// D9: `postgres[ql]://user:password@host:port/db?params` -> keys host, port, db, user,
/// password. Percent-escapes in user and password are decoded. The error never contains
/// the value.
pub fn postgres_uri(uri: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let rest = uri
        .trim()
        .strip_prefix("postgresql://")
        .or_else(|| uri.trim().strip_prefix("postgres://"))
        .ok_or("it does not start with postgresql://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (decode(u)?, decode(p)?),
            None => (decode(u)?, String::new()),
        },
        None => (String::new(), String::new()),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host lacks its closing ]")?;
        (
            h.to_string(),
            after.strip_prefix(':').unwrap_or("").to_string(),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), String::new()),
        }
    };
    if host.is_empty() {
        return Err("it names no host");
    }
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err("its port is not a number");
    }
    let port = if port.is_empty() { "5432".into() } else { port };
    Ok(BTreeMap::from([
        ("host".into(), host),
        ("port".into(), port),
        ("db".into(), decode(db)?),
        ("user".into(), user),
        ("password".into(), password),
    ]))
}

/// Names of a connection string's query parameters (`sslmode`, ...), which the split drops.
pub fn ignored_parameters(uri: &str) -> Vec<String> {
    let query = uri
        .split('#')
        .next()
        .unwrap_or("")
        .split_once('?')
        .map(|(_, q)| q);
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|k| !k.is_empty())
        .map(|k| decode(k).unwrap_or_else(|_| k.to_string()))
        .collect()
}

fn decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("it has a bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "it has a bad %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape is not UTF-8")
}

/// The CA bundle's certificates, concatenated from the listed keys in order (FR-063). The
/// ConfigMap is read from `configMapNamespace` when a converted v1alpha1 object names one.
pub async fn ca_bundle(
    client: &kube::Client,
    ns: &str,
    bundle: &crate::api::shared::CaBundle,
) -> Result<Result<String, Problem>, Error> {
    let cm_ns = bundle.config_map_namespace.as_deref().unwrap_or(ns);
    let name = &bundle.config_map_name;
    let api_cm: Api<ConfigMap> = Api::namespaced(client.clone(), cm_ns);
    let cm = api_cm
        .get_opt(name)
        .await
        .map_err(api("read", format!("ConfigMap {cm_ns}/{name}")))?;
    let Some(cm) = cm else {
        return Ok(Err(Problem::new(
            "ConfigMapNotFound",
            format!(
                "ConfigMap \"{name}\" not found in namespace \"{cm_ns}\". Referenced by: spec.networking.tls.caBundle.configMapName"
            ),
        )));
    };
    let default_keys = vec![CA_BUNDLE_KEY.to_string()];
    let keys = bundle.config_map_keys.as_ref().unwrap_or(&default_keys);
    let data = cm.data.unwrap_or_default();
    let mut pem = String::new();
    for key in keys {
        let Some(text) = data.get(key) else {
            return Ok(Err(Problem::new(
                "ConfigMapKeyMissing",
                format!(
                    "Key \"{key}\" not found in ConfigMap \"{name}\" in namespace \"{cm_ns}\". Referenced by: spec.networking.tls.caBundle.configMapKeys"
                ),
            )));
        };
        let certs = certificates(text);
        if certs.is_empty() {
            return Ok(Err(Problem::new(
                "CABundleInvalid",
                format!(
                    "Key \"{key}\" of ConfigMap \"{name}\" in namespace \"{cm_ns}\" holds no PEM certificate"
                ),
            )));
        }
        for c in certs {
            pem.push_str(c);
            pem.push('\n');
        }
    }
    Ok(Ok(pem))
}

/// The `CERTIFICATE` PEM blocks of `text`, other blocks skipped (as upstream does).
fn certificates(text: &str) -> Vec<&str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// The registry credentials the pods would pull with (FR-027h, D17): the `imagePullSecrets`
/// of the pod's ServiceAccount, as the kubelet reads them. A missing ServiceAccount or Secret,
/// or one that does not parse, is skipped as the kubelet skips it (with a log line naming it).
pub async fn pull_credentials(
    client: &kube::Client,
    ns: &str,
    service_account: &str,
) -> Result<crate::oci::Credentials, Error> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let mut creds = crate::oci::Credentials::anonymous(service_account);
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let Some(sa) = sas.get_opt(service_account).await.map_err(api(
        "read",
        format!("ServiceAccount {ns}/{service_account}"),
    ))?
    else {
        return Ok(creds);
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for r in sa.image_pull_secrets.unwrap_or_default() {
        let name = r.name;
        let Some(s) = secrets
            .get_opt(&name)
            .await
            .map_err(api("read", format!("Secret {ns}/{name}")))?
        else {
            tracing::warn!(secret = %name, service_account, "image pull Secret not found; skipped");
            continue;
        };
        let data = s.data.unwrap_or_default();
        let parsed = match (data.get(".dockerconfigjson"), data.get(".dockercfg")) {
            (Some(v), _) => creds.add_secret(&name, &v.0, false),
            (None, Some(v)) => creds.add_secret(&name, &v.0, true),
            (None, None) => {
                tracing::warn!(secret = %name, "image pull Secret has no .dockerconfigjson key; skipped");
                continue;
            }
        };
        if let Err(e) = parsed {
            tracing::warn!(error = %e, "image pull Secret skipped");
        }
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_uris_split_into_the_derived_keys() {
        assert_eq!(
            ignored_parameters("postgresql://a:b@h/db?sslmode=require&connect_timeout=5#x"),
            ["sslmode", "connect_timeout"]
        );
        assert!(ignored_parameters("postgresql://a:secret@h/db").is_empty());
        let d = postgres_uri("postgresql://app:p%40ss%3Aw@db.example:6543/llama?sslmode=require")
            .expect("valid");
        assert_eq!(d["host"], "db.example");
        assert_eq!(d["port"], "6543");
        assert_eq!(d["db"], "llama");
        assert_eq!(d["user"], "app");
        assert_eq!(d["password"], "p@ss:w");
        let d = postgres_uri("postgres://u@[::1]/x").expect("valid");
        assert_eq!((d["host"].as_str(), d["port"].as_str()), ("::1", "5432"));
        for bad in [
            "mysql://a@b/c",
            "postgres:///db",
            "postgres://h:notaport/db",
            "postgres://u:%zz@h/d",
        ] {
            let err = postgres_uri(bad).expect_err(bad);
            assert!(!err.contains("zz"), "the value never appears: {err}");
        }
    }

    #[test]
    fn only_certificate_blocks_are_kept() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----";
        let certs = certificates(text);
        assert_eq!(certs.len(), 2);
        assert!(certs[1].contains("BBB"));
        assert!(certificates("   \n").is_empty());
    }
}
