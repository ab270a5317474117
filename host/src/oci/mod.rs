//! Reading images from registries (FR-027f..j, NFR-006, D16..D18): the config.yaml an image's
//! labels carry, an external provider's `lls-provider-spec.yaml`, and wasm plugin artifacts
//! pinned by digest.
//!
//! Only what is needed is fetched: the manifest, the config blob, and at most the layers that
//! hold the wanted file. Every blob is checked against its digest. Results are cached by
//! digest; a tag is resolved to its digest on every call (one manifest HEAD), a digest
//! reference costs nothing once cached.

pub mod cache;
pub mod credentials;
pub mod error;
pub mod labels;
pub mod layer;
pub mod provider_package;

pub use credentials::Credentials;
pub use error::OciError;
pub use provider_package::ProviderPackage;

use cache::DigestCache;
use futures::TryStreamExt;
use labels::ConfigLabels;
use layer::{Compression, ScanError};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest file read out of a layer (a config.yaml or a provider spec).
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Largest wasm plugin artifact accepted.
const MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;
/// The media type of a wasm component layer (the CNCF wasm OCI artifact layout).
pub const WASM_LAYER: &str = "application/wasm";

/// How the operator reaches registries.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// PEM certificates trusted in addition to the system roots (private registries).
    pub ca_pem: Vec<u8>,
    /// Registries (`host[:port]`) spoken to over plain HTTP; for loopback test registries.
    pub plain_http: Vec<String>,
    /// Connect and read timeout per request.
    pub timeout: Option<Duration>,
}

/// The config.yaml an image's labels carry, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelConfig {
    pub yaml: String,
    /// `io.llamastack.config.version`, when set.
    pub version: Option<u32>,
    /// Whether it came from a layer (`io.llamastack.config.layer`) rather than inline.
    pub from_layer: bool,
}

/// An image resolved to its content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// `registry/repository@sha256:...`
    pub reference: String,
    pub digest: String,
}

/// Counts of registry round trips, to show the cache works (NFR-006).
#[derive(Debug, Default)]
pub struct Counters {
    pub manifest_requests: AtomicU64,
    pub blob_requests: AtomicU64,
}

pub struct Registry {
    settings: RegistrySettings,
    /// One client per credential set: oci-client remembers the first auth it is given per
    /// registry, and one tenant's pull Secret must never serve another's request.
    clients: Mutex<HashMap<String, Arc<Client>>>,
    configs: DigestCache<Option<LabelConfig>>,
    providers: DigestCache<Arc<ProviderPackage>>,
    /// The digest each tag last resolved to: while the registry cannot be reached, a running
    /// CR keeps its image and config instead of turning Failed on every resync.
    last_pinned: DigestCache<String>,
    pub counters: Counters,
}

impl Registry {
    pub fn new(settings: RegistrySettings) -> Registry {
        Registry {
            settings,
            clients: Mutex::new(HashMap::new()),
            configs: DigestCache::new(512, 32 * 1024 * 1024),
            providers: DigestCache::new(512, 4 * 1024 * 1024),
            last_pinned: DigestCache::new(4096, 1024 * 1024),
            counters: Counters::default(),
        }
    }

    /// The config.yaml `image`'s labels carry (`None`: the image has no such labels), with the
    /// image pinned to the digest it was read from.
    pub async fn image_config(
        &self,
        image: &str,
        creds: &Credentials,
    ) -> Result<(Pinned, Option<LabelConfig>), OciError> {
        let access = self.access(image, creds)?;
        let pinned = access.pin(self).await?;
        if let Some(hit) = self.configs.get(&pinned.digest) {
            return Ok((pinned, hit));
        }
        let (manifest, config) = access.manifest_and_config(self, &pinned).await?;
        let all = labels::labels(image, &config)?;
        let found = match labels::parse(image, &all)? {
            ConfigLabels::Absent => None,
            ConfigLabels::Inline { yaml, version } => Some(LabelConfig {
                yaml,
                version,
                from_layer: false,
            }),
            ConfigLabels::Layer {
                digest,
                path,
                version,
            } => {
                let Some(layer) = manifest.layers.iter().find(|l| l.digest == digest) else {
                    return Err(OciError::BadLabel {
                        image: image.to_string(),
                        label: labels::LAYER,
                        problem: format!("names {digest}, which is not a layer of this image"),
                    });
                };
                let scan = access
                    .scan_layer(self, &pinned, layer, &[path.as_str()], None)
                    .await?;
                let bytes = scan.files.get(&layer::normalize(&path)).ok_or_else(|| {
                    OciError::FileMissing {
                        image: image.to_string(),
                        path: format!("/{path} (label {}, layer {digest})", labels::PATH),
                    }
                })?;
                let yaml = String::from_utf8(bytes.clone()).map_err(|_| OciError::InvalidFile {
                    image: image.to_string(),
                    path: format!("/{path}"),
                    problem: "not UTF-8 text".into(),
                })?;
                Some(LabelConfig {
                    yaml,
                    version,
                    from_layer: true,
                })
            }
        };
        let size = found.as_ref().map_or(0, |c| c.yaml.len()) + 64;
        self.configs.put(pinned.digest.clone(), found.clone(), size);
        Ok((pinned, found))
    }

    /// An external provider image's `lls-provider-spec.yaml`, validated, and its wheel
    /// present (spec 001 FR-001..005). Layers are read top-down until both are found.
    pub async fn provider_package(
        &self,
        image: &str,
        creds: &Credentials,
    ) -> Result<(Pinned, Arc<ProviderPackage>), OciError> {
        let access = self.access(image, creds)?;
        let pinned = access.pin(self).await?;
        if let Some(hit) = self.providers.get(&pinned.digest) {
            return Ok((pinned, hit));
        }
        let (manifest, _) = access.manifest_and_config(self, &pinned).await?;
        let spec_path = layer::normalize(provider_package::SPEC_PATH);
        let dir = layer::normalize("/lls-provider");
        // Top-down: the first layer holding a path wins, unless a layer above deleted it.
        let invalid = |problem: String| OciError::InvalidFile {
            image: image.to_string(),
            path: provider_package::SPEC_PATH.into(),
            problem,
        };
        let mut package: Option<ProviderPackage> = None;
        let mut visible: std::collections::BTreeSet<String> = Default::default();
        let mut hidden: Vec<String> = Vec::new();
        let is_hidden = |hidden: &[String], p: &str| hidden.iter().any(|h| layer::covers(h, p));
        for l in manifest.layers.iter().rev() {
            let read: &[&str] = if package.is_none() {
                &[spec_path.as_str()]
            } else {
                &[]
            };
            let scan = access
                .scan_layer(self, &pinned, l, read, Some(dir.as_str()))
                .await?;
            if package.is_none()
                && !is_hidden(&hidden, &spec_path)
                && let Some(bytes) = scan.files.get(&spec_path)
            {
                // Parsed once, where found: a bad spec is final, whatever lies below.
                package = Some(
                    provider_package::parse(bytes)
                        .map_err(|problems| invalid(problems.join("; ")))?,
                );
            }
            visible.extend(scan.listed.into_iter().filter(|p| !is_hidden(&hidden, p)));
            hidden.extend(scan.deleted);
            if let Some(p) = package.take_if(|p| visible.contains(&layer::normalize(&p.wheel_path)))
            {
                let p = Arc::new(p);
                self.providers.put(pinned.digest.clone(), p.clone(), 1024);
                return Ok((pinned, p));
            }
        }
        Err(match package {
            None => OciError::FileMissing {
                image: image.to_string(),
                path: provider_package::SPEC_PATH.into(),
            },
            Some(p) => invalid(format!(
                "spec.wheelPath {} does not exist in the image",
                p.wheel_path
            )),
        })
    }

    /// A wasm plugin by a reference pinned by digest (D18): the single `application/wasm`
    /// layer's bytes, checked against the layer digest.
    pub async fn artifact(
        &self,
        reference: &str,
        creds: &Credentials,
    ) -> Result<Vec<u8>, OciError> {
        let access = self.access(reference, creds)?;
        if access.reference.digest().is_none() {
            return Err(OciError::Reference {
                image: reference.to_string(),
                detail:
                    "a plugin must be pinned by digest: registry/repository@sha256:<64 hex digits>"
                        .into(),
            });
        }
        let pinned = access.pin(self).await?;
        let (manifest, _) = access.manifest_and_config(self, &pinned).await?;
        let wasm: Vec<&OciDescriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == WASM_LAYER)
            .collect();
        let [layer] = wasm.as_slice() else {
            return Err(OciError::Unsupported {
                image: reference.to_string(),
                detail: format!(
                    "a plugin artifact has exactly one layer of media type {WASM_LAYER}; this one has {}",
                    wasm.len()
                ),
            });
        };
        if layer.size > MAX_ARTIFACT_BYTES as i64 {
            return Err(OciError::Unsupported {
                image: reference.to_string(),
                detail: format!(
                    "the wasm layer is {} bytes, more than the {MAX_ARTIFACT_BYTES} accepted",
                    layer.size
                ),
            });
        }
        let by_digest = access.reference.clone_with_digest(pinned.digest.clone());
        let mut out = Vec::new();
        self.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        access
            .client
            .pull_blob(&by_digest, *layer, &mut out)
            .await
            .map_err(|e| access.error(e, "the wasm layer"))?;
        Ok(out)
    }

    fn access<'a>(&self, image: &str, creds: &'a Credentials) -> Result<Access<'a>, OciError> {
        let reference: Reference = image.parse().map_err(|e| OciError::Reference {
            image: image.to_string(),
            detail: format!("{e}"),
        })?;
        let entry = creds.for_image(reference.resolve_registry(), reference.repository());
        let (auth, key) = match entry {
            Some(e) => {
                let mut h = Sha256::new();
                h.update(e.username.as_bytes());
                h.update([0]);
                h.update(e.password.as_bytes());
                (
                    RegistryAuth::Basic(e.username.clone(), e.password.clone()),
                    format!("{:x}", h.finalize()),
                )
            }
            None => (RegistryAuth::Anonymous, "anonymous".to_string()),
        };
        let client = self.client(&key).map_err(|detail| OciError::Registry {
            image: image.to_string(),
            registry: reference.resolve_registry().to_string(),
            detail,
        })?;
        Ok(Access {
            image: image.to_string(),
            reference,
            auth,
            client,
            creds,
        })
    }

    fn client(&self, key: &str) -> Result<Arc<Client>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(key) {
            return Ok(c.clone());
        }
        if clients.len() >= 256 {
            clients.clear();
        }
        let config = ClientConfig {
            protocol: if self.settings.plain_http.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(self.settings.plain_http.clone())
            },
            extra_root_certificates: if self.settings.ca_pem.is_empty() {
                Vec::new()
            } else {
                vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: self.settings.ca_pem.clone(),
                }]
            },
            connect_timeout: self.settings.timeout,
            read_timeout: self.settings.timeout,
            user_agent: concat!("llama-stack-operator/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Arc::new(
            Client::try_from(config)
                .map_err(|e| format!("cannot build the registry client: {e}"))?,
        );
        clients.insert(key.to_string(), client.clone());
        Ok(client)
    }
}

/// One image with the client and auth chosen for it.
struct Access<'a> {
    image: String,
    reference: Reference,
    auth: RegistryAuth,
    client: Arc<Client>,
    creds: &'a Credentials,
}

impl Access<'_> {
    /// The digest the reference points at now: a digest reference as is, a tag by one HEAD.
    async fn pin(&self, reg: &Registry) -> Result<Pinned, OciError> {
        let digest = match self.reference.digest() {
            Some(d) => d.to_string(),
            None => {
                reg.counters
                    .manifest_requests
                    .fetch_add(1, Ordering::Relaxed);
                // Keyed by who asks too: another tenant's success proves nothing for this one.
                let key = format!("{}\0{}", self.creds.service_account, self.image);
                match self
                    .client
                    .fetch_manifest_digest(&self.reference, &self.auth)
                    .await
                    .map_err(|e| self.error(e, "the manifest"))
                {
                    Ok(d) => {
                        reg.last_pinned.put(key, d.clone(), self.image.len() + 80);
                        d
                    }
                    // Only an outage falls back; a tag that is gone or refused is an answer.
                    Err(e @ (OciError::Unreachable { .. } | OciError::Registry { .. })) => {
                        match reg.last_pinned.get(&key) {
                            Some(d) => {
                                tracing::warn!(image = %self.image, digest = %d, error = %e, "registry unavailable: keeping the digest this tag last resolved to");
                                d
                            }
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Pinned {
            reference: format!(
                "{}/{}@{digest}",
                self.reference.registry(),
                self.reference.repository()
            ),
            digest,
        })
    }

    async fn manifest_and_config(
        &self,
        reg: &Registry,
        pinned: &Pinned,
    ) -> Result<(OciImageManifest, Vec<u8>), OciError> {
        let by_digest = self.reference.clone_with_digest(pinned.digest.clone());
        reg.counters
            .manifest_requests
            .fetch_add(1, Ordering::Relaxed);
        reg.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        let (manifest, _, config) = self
            .client
            .pull_manifest_and_config(&by_digest, &self.auth)
            .await
            .map_err(|e| self.error(e, "the manifest or config blob"))?;
        Ok((manifest, config.into_bytes()))
    }

    /// Streams one layer through the tar scanner on a blocking thread; the stream checks the
    /// layer digest at its end.
    async fn scan_layer(
        &self,
        reg: &Registry,
        pinned: &Pinned,
        layer: &OciDescriptor,
        read: &[&str],
        list_under: Option<&str>,
    ) -> Result<layer::Scan, OciError> {
        let compression =
            Compression::of(&layer.media_type).ok_or_else(|| OciError::Unsupported {
                image: self.image.clone(),
                detail: format!(
                    "layer {} has media type {}; only tar and tar+gzip layers are read",
                    layer.digest, layer.media_type
                ),
            })?;
        let by_digest = self.reference.clone_with_digest(pinned.digest.clone());
        reg.counters.blob_requests.fetch_add(1, Ordering::Relaxed);
        let stream = self
            .client
            .pull_blob_stream(&by_digest, layer)
            .await
            .map_err(|e| self.error(e, "a layer"))?;
        let reader =
            tokio_util::io::StreamReader::new(stream.stream.map_err(std::io::Error::other));
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let read: Vec<String> = read.iter().map(|s| s.to_string()).collect();
        let list_under = list_under.map(str::to_string);
        let expected = layer.digest.clone();
        let result = tokio::task::spawn_blocking(move || {
            let read: Vec<&str> = read.iter().map(String::as_str).collect();
            let mut hashing = Hashing {
                inner: bridge,
                hasher: Sha256::new(),
            };
            let scanned = layer::scan(
                &mut hashing,
                compression,
                &read,
                list_under.as_deref(),
                MAX_FILE_BYTES,
            );
            // Corrupted bytes usually break the gzip or tar format before the stream's end,
            // where the digest is checked: read the rest so the real cause is reported.
            if scanned.is_err() {
                let _ = std::io::copy(&mut hashing, &mut std::io::sink());
                let actual = format!("sha256:{:x}", hashing.hasher.finalize());
                if actual != expected {
                    return Err(ScanError::Io(std::io::Error::other(
                        oci_client::errors::DigestError::VerificationError { expected, actual },
                    )));
                }
            }
            scanned
        })
        .await
        .map_err(|e| OciError::Registry {
            image: self.image.clone(),
            registry: self.reference.resolve_registry().to_string(),
            detail: format!("reading layer {} stopped: {e}", layer.digest),
        })?;
        result.map_err(|e| match e {
            ScanError::Io(io) => match digest_error(&io) {
                Some((expected, actual)) => OciError::DigestMismatch {
                    image: self.image.clone(),
                    what: format!("layer {}", layer.digest),
                    expected,
                    actual,
                },
                None => OciError::InvalidFile {
                    image: self.image.clone(),
                    path: format!("layer {}", layer.digest),
                    problem: format!("not a readable tar stream ({io})"),
                },
            },
            too_large @ ScanError::TooLarge { .. } => OciError::InvalidFile {
                image: self.image.clone(),
                path: format!("layer {}", layer.digest),
                problem: too_large.to_string(),
            },
        })
    }

    /// Maps the client's error to what the user can act on.
    fn error(&self, e: OciDistributionError, what: &str) -> OciError {
        let image = self.image.clone();
        let registry = self.reference.resolve_registry().to_string();
        let unauthorized = |detail: String| OciError::Unauthorized {
            image: image.clone(),
            registry: registry.clone(),
            service_account: self.creds.service_account.clone(),
            detail,
        };
        match e {
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => {
                unauthorized(format!("HTTP 401 reading {what}"))
            }
            OciDistributionError::ImageManifestNotFoundError(_) => OciError::NotFound {
                image: image.clone(),
                registry,
                detail: format!("no {what}"),
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let detail = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    OciError::NotFound {
                        image,
                        registry,
                        detail,
                    }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(detail)
                } else {
                    OciError::Registry {
                        image,
                        registry,
                        detail,
                    }
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                401 | 403 => unauthorized(format!("HTTP {code} reading {what}")),
                404 => OciError::NotFound {
                    image,
                    registry,
                    detail: format!("HTTP 404 reading {what}"),
                },
                _ => OciError::Registry {
                    image,
                    registry,
                    detail: format!("HTTP {code} reading {what}: {}", first_line(&message)),
                },
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => OciError::DigestMismatch {
                image,
                what: what.to_string(),
                expected,
                actual,
            },
            OciDistributionError::RequestError(r) => OciError::Unreachable {
                image,
                registry,
                detail: describe(&r),
            },
            other => OciError::Registry {
                image,
                registry,
                detail: format!("reading {what}: {}", first_line(&other.to_string())),
            },
        }
    }
}

/// Hashes what passes through, to tell corruption from a malformed layer.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The HTTP client's error chain, which says what failed (DNS, refused, TLS, timeout).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn digest_error(io: &std::io::Error) -> Option<(String, String)> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = io.get_ref().map(|e| e as _);
    while let Some(s) = source {
        if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
            s.downcast_ref::<oci_client::errors::DigestError>()
        {
            return Some((expected.clone(), actual.clone()));
        }
        source = s.source();
    }
    None
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}
