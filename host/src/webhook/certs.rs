//! The webhooks' TLS: a self-signed CA and a serving certificate kept in a Secret, renewed
//! before they expire, and the CA injected into the webhook configurations and the CRD's
//! conversion stanza (issue 6, deliverable 5). A cert-manager install skips this module.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Serving certificates live this long; the CA ten times longer.
pub const CERT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Renewed when less than this is left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// When the serving certificate expires (unix seconds), and the names it is for: read back to
/// decide on renewal without parsing X.509.
pub const NOT_AFTER_ANNOTATION: &str = "llamastack.io/serving-cert-not-after";
/// When the CA expires (unix seconds): the serving certificate is renewed under the same CA
/// while the CA outlives it, so the API server's caBundle stays valid across renewals.
pub const CA_NOT_AFTER_ANNOTATION: &str = "llamastack.io/serving-ca-not-after";
pub const NAMES_ANNOTATION: &str = "llamastack.io/serving-cert-dns-names";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("failed to issue a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("failed to {verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        source: kube::Error,
    },
    #[error("the clock is before 1970")]
    Clock,
}

/// A CA and the serving certificate it signed, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificates {
    pub ca_pem: String,
    /// The CA's key, kept in the Secret to sign the next serving certificate.
    pub ca_key_pem: String,
    /// Unix seconds.
    pub ca_not_after: u64,
    pub cert_pem: String,
    pub key_pem: String,
    /// Unix seconds.
    pub not_after: u64,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("Certificates")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> Result<u64, CertError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CertError::Clock)
}

fn offset(secs: u64) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(secs as i64).map_err(|_| CertError::Clock)
}

/// The CA's name and usages: the same every time, so a stored CA key plus these parameters
/// is an issuer whose certificates chain to the stored CA certificate.
fn ca_params(start: u64, not_after: u64) -> Result<rcgen::CertificateParams, CertError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "llama-stack-operator webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = offset(start)?;
    ca.not_after = offset(not_after)?;
    Ok(ca)
}

/// A fresh CA and a serving certificate for `dns_names`, valid from `now`.
pub fn issue(dns_names: &[String], now: SystemTime) -> Result<Certificates, CertError> {
    let start = unix(now)?.saturating_sub(300); // tolerate clock skew with the API server
    let ca_not_after = unix(now)? + 10 * CERT_LIFETIME.as_secs();
    let ca_key = rcgen::KeyPair::generate()?;
    let params = ca_params(start, ca_not_after)?;
    let ca_cert = params.self_signed(&ca_key)?;
    let ca = Certificates {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        ca_not_after,
        cert_pem: String::new(),
        key_pem: String::new(),
        not_after: 0,
    };
    issue_leaf(&ca, dns_names, now)
}

/// A serving certificate for `dns_names` signed by the CA of `ca`, valid from `now`.
pub fn issue_leaf(
    ca: &Certificates,
    dns_names: &[String],
    now: SystemTime,
) -> Result<Certificates, CertError> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
    let start = unix(now)?.saturating_sub(300);
    let not_after = unix(now)? + CERT_LIFETIME.as_secs();
    let issuer = Issuer::new(
        ca_params(start, ca.ca_not_after)?,
        KeyPair::from_pem(&ca.ca_key_pem)?,
    );
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(dns_names.to_vec())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names.first().cloned().unwrap_or_default(),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = offset(start)?;
    leaf.not_after = offset(not_after)?;
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(Certificates {
        ca_pem: ca.ca_pem.clone(),
        ca_key_pem: ca.ca_key_pem.clone(),
        ca_not_after: ca.ca_not_after,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// The CA stored in the Secret, when it can sign a certificate that lives its full term.
fn stored_ca(s: &Secret, now: u64) -> Option<Certificates> {
    let ca_not_after: u64 = s
        .metadata
        .annotations
        .as_ref()?
        .get(CA_NOT_AFTER_ANNOTATION)?
        .parse()
        .ok()?;
    if ca_not_after <= now + CERT_LIFETIME.as_secs() {
        return None;
    }
    let data = s.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Certificates {
        ca_pem: text("ca.crt")?,
        ca_key_pem: text("ca.key")?,
        ca_not_after,
        cert_pem: String::new(),
        key_pem: String::new(),
        not_after: 0,
    })
}

fn from_secret(s: &Secret, dns_names: &[String]) -> Option<Certificates> {
    let annotations = s.metadata.annotations.as_ref()?;
    if annotations.get(NAMES_ANNOTATION)? != &dns_names.join(",") {
        return None;
    }
    let not_after = annotations.get(NOT_AFTER_ANNOTATION)?.parse().ok()?;
    let data = s.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Certificates {
        ca_pem: text("ca.crt")?,
        ca_key_pem: text("ca.key")?,
        ca_not_after: annotations.get(CA_NOT_AFTER_ANNOTATION)?.parse().ok()?,
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
        not_after,
    })
}

/// The certificates in Secret `name`, renewed (and written back) when missing, issued for
/// other names, or within [`RENEW_BEFORE`] of expiry. Returns them and whether they are new.
pub async fn ensure(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dns_names: &[String],
    now: SystemTime,
) -> Result<(Certificates, bool), CertError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let what = format!("Secret {namespace}/{name}");
    let existing = secrets
        .get_opt(name)
        .await
        .map_err(|source| CertError::Api {
            verb: "read",
            what: what.clone(),
            source,
        })?;
    let horizon = unix(now)? + RENEW_BEFORE.as_secs();
    if let Some(certs) = existing.as_ref().and_then(|s| from_secret(s, dns_names))
        && certs.not_after > horizon
    {
        return Ok((certs, false));
    }
    // A new serving certificate under the same CA when it lasts long enough: no caBundle
    // change, so the API server never holds a CA the served certificate does not chain to.
    let certs = match existing
        .as_ref()
        .and_then(|s| stored_ca(s, unix(now).unwrap_or(0)))
    {
        Some(ca) => issue_leaf(&ca, dns_names, now)?,
        None => issue(dns_names, now)?,
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            resource_version: existing
                .as_ref()
                .and_then(|s| s.metadata.resource_version.clone()),
            annotations: Some(BTreeMap::from([
                (NOT_AFTER_ANNOTATION.into(), certs.not_after.to_string()),
                (
                    CA_NOT_AFTER_ANNOTATION.into(),
                    certs.ca_not_after.to_string(),
                ),
                (NAMES_ANNOTATION.into(), dns_names.join(",")),
            ])),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "llama-stack-operator".into(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                "ca.crt".into(),
                ByteString(certs.ca_pem.clone().into_bytes()),
            ),
            (
                "tls.crt".into(),
                ByteString(certs.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".into(),
                ByteString(certs.key_pem.clone().into_bytes()),
            ),
            (
                "ca.key".into(),
                ByteString(certs.ca_key_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    let pp = PostParams::default();
    let written = match existing {
        Some(_) => secrets.replace(name, &pp, &secret).await,
        None => secrets.create(&pp, &secret).await,
    };
    written.map_err(|source| CertError::Api {
        verb: "write",
        what,
        source,
    })?;
    tracing::info!(
        secret = name,
        not_after = certs.not_after,
        "webhook certificate issued"
    );
    Ok((certs, true))
}

/// Where this operator's webhooks are reached: the conversion stanza of the CRD is shared by
/// every operator process on a cluster, so the CA goes there only when it points at us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// In the cluster: `service.namespace`.
    Service { namespace: String, name: String },
    /// A local process: `https://<host>:<port>/...`.
    Url { hosts: Vec<String>, port: u16 },
}

impl Endpoint {
    pub fn matches(
        &self,
        cc: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig,
    ) -> bool {
        match self {
            Endpoint::Service { namespace, name } => cc
                .service
                .as_ref()
                .is_some_and(|s| &s.namespace == namespace && &s.name == name),
            Endpoint::Url { hosts, port } => cc.url.as_deref().is_some_and(|u| {
                let authority = u
                    .trim_start_matches("https://")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                hosts.iter().any(|h| authority == format!("{h}:{port}"))
            }),
        }
    }
}

/// Writes `ca_pem` into every webhook of the named configurations and into the CRD's
/// conversion webhook when it points at `ours` (or always, with `None`). Only `caBundle`
/// changes, and only where it differs. A configuration that does not exist is skipped (an
/// install without that webhook). The three are independent, and written at once: a CRD
/// update takes the API server a while (it rebuilds the CRD's handler), and start-up waits.
pub async fn inject(
    client: &kube::Client,
    ca_pem: &str,
    mutating: &str,
    validating: &str,
    crd: &str,
    ours: Option<&Endpoint>,
) -> Result<(), CertError> {
    tokio::try_join!(
        inject_admission(client, ca_pem, mutating, validating),
        inject_conversion(client, ca_pem, crd, ours),
    )?;
    Ok(())
}

/// The admission half of [`inject`]: the two webhook configurations, at once.
pub async fn inject_admission(
    client: &kube::Client,
    ca_pem: &str,
    mutating: &str,
    validating: &str,
) -> Result<(), CertError> {
    let ca = ByteString(ca_pem.as_bytes().to_vec());
    tokio::try_join!(
        inject_webhooks(client, &ca, mutating, mutating_bundles),
        inject_webhooks(client, &ca, validating, validating_bundles),
    )?;
    Ok(())
}

/// The conversion half of [`inject`]: the CRD, when its conversion webhook is `ours`.
pub async fn inject_conversion(
    client: &kube::Client,
    ca_pem: &str,
    crd: &str,
    ours: Option<&Endpoint>,
) -> Result<(), CertError> {
    inject_crd(client, &ByteString(ca_pem.as_bytes().to_vec()), crd, ours).await
}

fn api_err(verb: &'static str, what: String) -> impl FnOnce(kube::Error) -> CertError {
    move |source| CertError::Api { verb, what, source }
}

/// Writes `ca` into every webhook of the configuration `name` of kind `K`, if one lacks it (a
/// restart or a kept certificate writes nothing). `bundles` are its webhooks' `caBundle`s.
async fn inject_webhooks<K>(
    client: &kube::Client,
    ca: &ByteString,
    name: &str,
    bundles: fn(&mut K) -> Vec<&mut Option<ByteString>>,
) -> Result<(), CertError>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let what = format!("{} {name}", K::kind(&()));
    let Some(mut cfg) = api
        .get_opt(name)
        .await
        .map_err(api_err("read", what.clone()))?
    else {
        return Ok(());
    };
    let hooks = bundles(&mut cfg);
    if hooks.iter().all(|b| b.as_ref() == Some(ca)) {
        return Ok(());
    }
    for b in hooks {
        *b = Some(ca.clone());
    }
    api.replace(name, &PostParams::default(), &cfg)
        .await
        .map_err(api_err("update", what))?;
    Ok(())
}

fn mutating_bundles(c: &mut MutatingWebhookConfiguration) -> Vec<&mut Option<ByteString>> {
    let hooks = c.webhooks.iter_mut().flatten();
    hooks.map(|w| &mut w.client_config.ca_bundle).collect()
}

fn validating_bundles(c: &mut ValidatingWebhookConfiguration) -> Vec<&mut Option<ByteString>> {
    let hooks = c.webhooks.iter_mut().flatten();
    hooks.map(|w| &mut w.client_config.ca_bundle).collect()
}

async fn inject_crd(
    client: &kube::Client,
    ca: &ByteString,
    crd: &str,
    ours: Option<&Endpoint>,
) -> Result<(), CertError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let what = format!("CustomResourceDefinition {crd}");
    let Some(mut def) = api
        .get_opt(crd)
        .await
        .map_err(api_err("read", what.clone()))?
    else {
        return Ok(());
    };
    if let Some(cc) = def
        .spec
        .conversion
        .as_mut()
        .and_then(|conv| conv.webhook.as_mut())
        .and_then(|w| w.client_config.as_mut())
        && ours.is_none_or(|o| o.matches(cc))
        && cc.ca_bundle.as_ref() != Some(ca)
    {
        cc.ca_bundle = Some(ca.clone());
        api.replace(crd, &PostParams::default(), &def)
            .await
            .map_err(api_err("update", what))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        ServiceReference, WebhookClientConfig,
    };

    #[test]
    fn the_crd_is_ours_only_when_it_points_at_us() {
        let svc = |ns: &str, name: &str| WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: ns.into(),
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let url = |u: &str| WebhookClientConfig {
            url: Some(u.into()),
            ..Default::default()
        };
        let in_cluster = Endpoint::Service {
            namespace: "ops".into(),
            name: "hook".into(),
        };
        assert!(in_cluster.matches(&svc("ops", "hook")));
        assert!(!in_cluster.matches(&svc("other", "hook")));
        assert!(!in_cluster.matches(&url("https://127.0.0.1:9443/convert")));
        let local = Endpoint::Url {
            hosts: vec!["127.0.0.1".into()],
            port: 9443,
        };
        assert!(local.matches(&url("https://127.0.0.1:9443/convert")));
        assert!(!local.matches(&url("https://127.0.0.1:19443/convert")));
        assert!(!local.matches(&svc("ops", "hook")));
    }

    fn chains_to(ca_pem: &str, cert_pem: &str, name: &str, at: SystemTime) -> Result<(), String> {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let leaf =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let secs = at.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::since_unix_epoch(secs))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_renewed_serving_certificate_chains_to_the_same_ca() {
        let now = SystemTime::now();
        let names = vec!["hook.ops.svc".to_string()];
        let first = issue(&names, now).expect("issues");
        chains_to(&first.ca_pem, &first.cert_pem, "hook.ops.svc", now).expect("first chains");
        let later = now + CERT_LIFETIME - Duration::from_secs(10 * 24 * 3600);
        let renewed = issue_leaf(&first, &names, later).expect("renews");
        assert_eq!(renewed.ca_pem, first.ca_pem, "the CA stays");
        assert_ne!(renewed.cert_pem, first.cert_pem);
        chains_to(&first.ca_pem, &renewed.cert_pem, "hook.ops.svc", later)
            .expect("renewed chains to the old CA");
        // A certificate from another CA does not.
        let other = issue(&names, now).expect("issues");
        assert!(chains_to(&first.ca_pem, &other.cert_pem, "hook.ops.svc", now).is_err());
    }

    #[test]
    fn issued_certificates_serve_tls_and_hide_the_key_from_debug() {
        let now = SystemTime::now();
        let certs = issue(
            &["svc.ns.svc".into(), "svc.ns.svc.cluster.local".into()],
            now,
        )
        .expect("issues");
        assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certs.key_pem.contains("PRIVATE KEY"));
        let secs = now
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert_eq!(certs.not_after, secs + CERT_LIFETIME.as_secs());
        super::super::tls_config(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
            .expect("rustls accepts them");
        assert!(!format!("{certs:?}").contains("PRIVATE"));
    }
}
