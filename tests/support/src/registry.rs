//! A real OCI registry on loopback for tests: Debian's `docker-registry`
//! (distribution 2.8.2), started as `docker-registry serve CONFIG.yml` with its
//! storage, config, certificates and log in a temp dir.
//!
//! There is no Docker engine on the test machines, so the images are built here
//! ([`TestImage`]: deterministic tar layers, an OCI image config with labels, or
//! a wasm artifact) and pushed with plain registry API calls
//! ([`TestRegistry::push`]).
//!
//! The binary is `LLSD_REGISTRY_BIN`, else `/usr/bin/docker-registry`; when it is
//! missing, [`TestRegistry::start`] fails and says to run
//! `tests/registry/install.sh` (tests never skip).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use reqwest::{Client, Method, RequestBuilder, StatusCode, Url};
use sha2::{Digest as _, Sha256};

/// Default registry binary (Debian package `docker-registry`).
const DEFAULT_BIN: &str = "/usr/bin/docker-registry";

/// How long [`TestRegistry::start`] waits for `GET /v2/` to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports are picked by binding port 0 and releasing it, so another process can
/// take the port before the registry binds it; such a start is retried.
const START_ATTEMPTS: usize = 5;

/// Lines of the registry's log quoted in errors.
const LOG_TAIL_LINES: usize = 30;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const MEDIA_TYPE_WASM_LAYER: &str = "application/wasm";

/// How to run a [`TestRegistry`]. The default is plain HTTP without auth.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate signed by a fresh CA ([`TestRegistry::ca_pem`]).
    pub tls: bool,
    /// Require HTTP basic auth with this (username, password) (htpasswd, bcrypt).
    pub basic_auth: Option<(String, String)>,
}

/// A running `docker-registry` on 127.0.0.1. The process is killed and its temp
/// dir (storage, config, log) removed on drop.
pub struct TestRegistry {
    child: Child,
    /// Kills the registry if this test process dies without running `Drop`
    /// (abort, SIGKILL): it holds the read end of a pipe only we write to.
    watchdog: Option<Child>,
    port: u16,
    tls: bool,
    basic_auth: Option<(String, String)>,
    ca_pem: Option<String>,
    client: Client,
    log_path: PathBuf,
    storage: PathBuf,
    // Last, so the directory is removed after the process is gone (fields drop
    // in order, after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("host", &self.host())
            .field("tls", &self.tls)
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The server side of the TLS setup: the CA (given to clients) and the
/// serving certificate and key (given to the registry).
struct TlsFiles {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestRegistry {
    /// Starts a registry on a free port of 127.0.0.1 and waits until `GET /v2/`
    /// answers (200, or 401 with basic auth). If the registry exits first, the
    /// error quotes the end of its log.
    pub async fn start(opts: RegistryOptions) -> Result<TestRegistry> {
        crate::install_crypto_provider();
        let bin = registry_bin()?;
        let tls = if opts.tls {
            Some(tls_files().context("generating the test registry's TLS certificates")?)
        } else {
            None
        };
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin, &opts, tls.as_ref()).await {
                Ok(registry) => return Ok(registry),
                Err(StartError::PortTaken(e)) => last_err = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| anyhow!("no start attempted"))
            .context(format!(
                "starting {} failed {START_ATTEMPTS} times: the port was taken each time",
                bin.display()
            )))
    }

    async fn start_once(
        bin: &Path,
        opts: &RegistryOptions,
        tls: Option<&TlsFiles>,
    ) -> std::result::Result<TestRegistry, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("llsd-registry-")
            .tempdir()
            .context("creating the test registry's temp dir")?;
        let port = crate::ports::free_port()?;
        let storage = dir.path().join("storage");
        let log_path = dir.path().join("registry.log");
        let config_path = dir.path().join("config.yml");
        let config = write_config(dir.path(), port, &storage, opts, tls)?;
        fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;

        // stdout (access log) and stderr (logrus) share one append-mode file:
        // each log line is a single write(2), so lines never interleave.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating {}", log_path.display()))?;
        let child = spawn_serve(bin, dir.path(), log, log_err)?;
        let watchdog = spawn_watchdog(child.id());

        let client = http_client(tls.map(|t| t.ca_pem.as_str()))?;
        let mut registry = TestRegistry {
            child,
            watchdog,
            port,
            tls: tls.is_some(),
            basic_auth: opts.basic_auth.clone(),
            ca_pem: tls.map(|t| t.ca_pem.clone()),
            client,
            log_path,
            storage,
            dir,
        };
        registry.wait_ready().await?;
        Ok(registry)
    }

    /// Polls `GET /v2/` until it answers 200 or 401, the process exits, or
    /// [`START_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> std::result::Result<(), StartError> {
        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking the registry process")?
            {
                let tail = self.log_tail();
                let err = anyhow!(
                    "docker-registry exited ({status}) before answering GET {url}; \
                     its log ends with:\n{tail}"
                );
                // Only a lost race for the port is worth another try.
                return Err(if tail.contains("address already in use") {
                    StartError::PortTaken(err)
                } else {
                    StartError::Other(err)
                });
            }
            let last = match self.client.get(&url).send().await {
                Ok(resp) if matches!(resp.status().as_u16(), 200 | 401) => return Ok(()),
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow!(
                    "docker-registry did not answer GET {url} within {START_TIMEOUT:?} (last: {last}); \
                     its log ends with:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// PEM of the self-signed CA that signed the serving certificate (SANs IP
    /// 127.0.0.1 and DNS localhost); `None` without TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// GET and HEAD requests to `/v2/<repo>/blobs/<digest>` answered so far,
    /// whatever their status (401s and 404s included), counted from the access
    /// log. A line is written when the request's handler returns, so a client
    /// can finish reading a large blob a moment before it is counted.
    pub fn blob_requests(&self) -> usize {
        self.count_requests(|path| path_tail(path, "/blobs/").is_some_and(|d| d.contains(':')))
    }

    /// GET and HEAD requests to `/v2/<repo>/manifests/<tag or digest>`
    /// answered so far (see [`blob_requests`](Self::blob_requests)).
    pub fn manifest_requests(&self) -> usize {
        self.count_requests(|path| path_tail(path, "/manifests/").is_some())
    }

    fn count_requests(&self, matches: impl Fn(&str) -> bool) -> usize {
        // A missing or unreadable log means nothing was logged; the counters
        // are infallible by design, so they report 0 rather than fail.
        let log = fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8_lossy(&log)
            .lines()
            .filter_map(access_log_request)
            .filter(|(method, path)| matches!(*method, "GET" | "HEAD") && matches(path))
            .count()
    }

    /// Pushes `image` as `repo:tag` (blobs, then the manifest) and returns the
    /// manifest digest `sha256:...`. Uses the basic-auth credentials when set.
    pub async fn push(&self, repo: &str, tag: &str, image: &TestImage) -> Result<String> {
        let built = image
            .build()
            .with_context(|| format!("building the image for {repo}:{tag}"))?;
        for blob in std::iter::once(&built.config).chain(&built.layers) {
            self.push_blob(repo, blob)
                .await
                .with_context(|| format!("pushing blob {} to {repo}", blob.digest))?;
        }
        let manifest = built.manifest()?;
        let digest = sha256_digest(&manifest);
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.base_url());
        let resp = self
            .request(Method::PUT, &url)
            .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE_MANIFEST)
            .body(manifest)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let resp = expect_status(resp, StatusCode::CREATED, "PUT", &url).await?;
        let returned = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(
            returned == digest,
            "PUT {url}: the registry says the manifest digest is {returned:?}, we computed {digest}"
        );
        Ok(digest)
    }

    /// Monolithic upload: `POST /v2/<repo>/blobs/uploads/`, then `PUT` the whole
    /// blob to the returned location with `?digest=`.
    async fn push_blob(&self, repo: &str, blob: &Blob) -> Result<()> {
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.base_url());
        let resp = self
            .request(Method::POST, &start)
            .send()
            .await
            .with_context(|| format!("POST {start}"))?;
        let resp = expect_status(resp, StatusCode::ACCEPTED, "POST", &start).await?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("POST {start}: 202 without a Location header"))?;
        // The spec allows a relative Location; 2.8 sends an absolute one.
        let mut url = Url::parse(&start)
            .and_then(|base| base.join(location))
            .with_context(|| format!("POST {start}: bad Location {location:?}"))?;
        url.query_pairs_mut().append_pair("digest", &blob.digest);
        let resp = self
            .request(Method::PUT, url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(blob.bytes.clone())
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        expect_status(resp, StatusCode::CREATED, "PUT", url.as_str()).await?;
        Ok(())
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let req = self.client.request(method, url);
        match &self.basic_auth {
            Some((user, pass)) => req.basic_auth(user, Some(pass)),
            None => req,
        }
    }

    /// Rewrites the stored bytes of blob `digest` (same length, every byte
    /// changed), so the registry serves content that no longer matches its
    /// digest. The registry does not re-verify stored blobs when serving them.
    pub fn corrupt_blob(&self, digest: &str) -> Result<()> {
        let path = self.blob_path(digest)?;
        let mut data = fs::read(&path)
            .with_context(|| format!("reading blob {digest} at {}", path.display()))?;
        ensure!(
            !data.is_empty(),
            "blob {digest} is empty: it cannot be corrupted without changing its length"
        );
        for b in &mut data {
            *b ^= 0xff;
        }
        fs::write(&path, &data)
            .with_context(|| format!("writing blob {digest} at {}", path.display()))?;
        Ok(())
    }

    /// Where distribution's filesystem driver keeps a blob's bytes.
    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let (alg, hex) = digest
            .split_once(':')
            .ok_or_else(|| anyhow!("{digest:?} is not a digest (ALG:HEX)"))?;
        // Checked so a bad digest cannot name a path outside the storage dir.
        ensure!(
            !alg.is_empty()
                && alg.bytes().all(|b| b.is_ascii_alphanumeric())
                && hex.len() >= 2
                && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{digest:?} is not a digest (ALG:HEX)"
        );
        Ok(self
            .storage
            .join("docker/registry/v2/blobs")
            .join(alg)
            .join(&hex[..2])
            .join(hex)
            .join("data"))
    }

    /// A `.dockerconfigjson` for this registry, as in a
    /// `kubernetes.io/dockerconfigjson` pull secret:
    /// `{"auths":{"127.0.0.1:PORT":{"username","password","auth"}}}`, or
    /// `{"auths":{}}` without basic auth.
    pub fn dockerconfigjson(&self) -> String {
        let mut auths = serde_json::Map::new();
        if let Some((user, pass)) = &self.basic_auth {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            auths.insert(
                self.host(),
                serde_json::json!({ "username": user, "password": pass, "auth": auth }),
            );
        }
        serde_json::json!({ "auths": auths }).to_string()
    }

    /// The last [`LOG_TAIL_LINES`] lines of the registry's log.
    fn log_tail(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(log) => {
                let log = String::from_utf8_lossy(&log);
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            }
            Err(e) => format!("(cannot read the log: {e})"),
        }
    }
}

/// `docker-registry serve <dir>/config.yml` in `dir`, its output to `log`.
fn spawn_serve(bin: &Path, dir: &Path, log: fs::File, log_err: fs::File) -> Result<Child> {
    let config_path = dir.join("config.yml");
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg(&config_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // REGISTRY_* variables override the config file.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(name);
        }
    }
    cmd.spawn()
        .with_context(|| format!("running {} serve {}", bin.display(), config_path.display()))
}

impl TestRegistry {
    /// An outage: the registry killed (SIGKILL), its storage and port kept for [`Self::revive`].
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.child.kill().context("killing the registry")?;
        self.child.wait().context("reaping the registry")?;
        Ok(())
    }

    /// The end of an outage: the same registry (config, storage, port) serving again.
    pub async fn revive(&mut self) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log.try_clone()?;
        self.child = spawn_serve(&registry_bin()?, self.dir.path(), log, log_err)?;
        self.watchdog = spawn_watchdog(self.child.id());
        match self.wait_ready().await {
            Ok(()) => Ok(()),
            Err(StartError::PortTaken(e)) | Err(StartError::Other(e)) => Err(e),
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // The watchdog goes first: once the registry is reaped its pid may be
        // reused, and the watchdog must not kill that other process.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    /// The registry could not bind its port (another process took it).
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

fn registry_bin() -> Result<PathBuf> {
    let (bin, from) = match std::env::var_os("LLSD_REGISTRY_BIN") {
        Some(b) if !b.is_empty() => (PathBuf::from(b), "LLSD_REGISTRY_BIN"),
        _ => (PathBuf::from(DEFAULT_BIN), "the default"),
    };
    if !bin.is_file() {
        bail!(
            "the OCI registry binary {} ({from}) does not exist: run `tests/registry/install.sh` \
             (installs Debian's docker-registry), or set LLSD_REGISTRY_BIN to a distribution \
             `registry` binary",
            bin.display()
        );
    }
    Ok(bin)
}

/// `sh` blocked reading a pipe whose only writer is this process; at EOF (we
/// exited, however) it SIGKILLs the registry. Best effort: without `sh` the
/// registry is still killed by `Drop`.
fn spawn_watchdog(registry_pid: u32) -> Option<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(r#"read -r _; kill -9 "$0" 2>/dev/null"#)
        .arg(registry_pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A client for this registry: trusts only the test CA when there is one, and
/// never goes through a proxy (the registry is on loopback).
fn http_client(ca_pem: Option<&str>) -> Result<Client> {
    let mut builder = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5));
    if let Some(pem) = ca_pem {
        let ca = reqwest::Certificate::from_pem(pem.as_bytes())
            .context("parsing the test registry's CA certificate")?;
        builder = builder.tls_certs_only([ca]);
    }
    builder
        .build()
        .context("building the HTTP client for the test registry")
}

fn tls_files() -> Result<TlsFiles> {
    let (ca_pem, cert_pem, key_pem) = loopback_certificates("llsd test registry CA")?;
    Ok(TlsFiles {
        ca_pem,
        cert_pem,
        key_pem,
    })
}

/// A fresh CA named `ca_name` and a serving certificate it signed for 127.0.0.1 and
/// `localhost`: (CA PEM, certificate PEM, key PEM).
pub fn loopback_certificates(ca_name: &str) -> Result<(String, String, String)> {
    serving_certificates(ca_name, &["localhost", "127.0.0.1"])
}

/// A fresh CA named `ca_name` and a serving certificate it signed for `hosts` (DNS names or IP
/// addresses; the first is the subject's common name): (CA PEM, certificate PEM, key PEM).
/// The certificate carries an Authority Key Identifier: Python 3.13 verifies strictly
/// (VERIFY_X509_STRICT) and refuses a chain without it.
pub fn serving_certificates(ca_name: &str, hosts: &[&str]) -> Result<(String, String, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    for host in hosts {
        leaf.subject_alt_names
            .push(match host.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*host).try_into()?),
            });
    }
    if let Some(first) = hosts.first() {
        leaf.distinguished_name.push(DnType::CommonName, *first);
    }
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// Writes the TLS and htpasswd files into `dir` and returns the registry
/// config (YAML; JSON-quoted strings are valid YAML scalars).
fn write_config(
    dir: &Path,
    port: u16,
    storage: &Path,
    opts: &RegistryOptions,
    tls: Option<&TlsFiles>,
) -> Result<String> {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let path = |p: &Path| q(&p.to_string_lossy());
    let mut config = String::new();
    // `log.accesslog` writes one Apache combined-format line per request to
    // stdout; the request counters parse those. `http.secret` is set only to
    // silence the "generated random secret" warning.
    let _ = write!(
        config,
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\n\
         http:\n  addr: {}\n  secret: llsd-test-registry\n",
        path(storage),
        q(&format!("127.0.0.1:{port}")),
    );
    if let Some(tls) = tls {
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        fs::write(&cert, &tls.cert_pem).with_context(|| format!("writing {}", cert.display()))?;
        write_private(&key, tls.key_pem.as_bytes())?;
        let _ = write!(
            config,
            "  tls:\n    certificate: {}\n    key: {}\n",
            path(&cert),
            path(&key)
        );
    }
    if let Some((user, pass)) = &opts.basic_auth {
        ensure!(
            !user.contains(':') && !user.contains('\n'),
            "basic auth username {user:?} cannot go into an htpasswd file"
        );
        // distribution only accepts bcrypt entries; cost 4 (the minimum) keeps
        // the per-request check cheap.
        let hash = bcrypt::hash_with_result(pass, 4)
            .context("hashing the test registry password")?
            .format_for_version(bcrypt::Version::TwoY);
        let htpasswd = dir.join("htpasswd");
        write_private(&htpasswd, format!("{user}:{hash}\n").as_bytes())?;
        let _ = write!(
            config,
            "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
            q("llsd-test-registry"),
            path(&htpasswd)
        );
    }
    Ok(config)
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// The (method, path without query) of an access-log line, e.g.
/// `127.0.0.1 - - [28/Nov/2026:02:15:34 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`.
/// logrus lines (`time="..." level=info msg=...`) never contain `] "`.
fn access_log_request(line: &str) -> Option<(&str, &str)> {
    let (_, rest) = line.split_once("] \"")?;
    let mut parts = rest.splitn(3, ' ');
    let method = parts.next()?;
    let uri = parts.next()?;
    let path = uri.split_once('?').map_or(uri, |(p, _)| p);
    path.starts_with("/v2/").then_some((method, path))
}

/// The part of `path` after the last `sep` when it is one segment
/// (`/v2/a/b/blobs/sha256:x` -> `sha256:x`; `/v2/a/blobs/uploads/u` -> None).
fn path_tail<'a>(path: &'a str, sep: &str) -> Option<&'a str> {
    let (_, tail) = path.rsplit_once(sep)?;
    (!tail.is_empty() && !tail.contains('/')).then_some(tail)
}

/// `resp` if its status is `want`, else an error quoting the registry's answer
/// (distribution's JSON `errors` body says what was wrong).
async fn expect_status(
    resp: reqwest::Response,
    want: StatusCode,
    method: &str,
    url: &str,
) -> Result<reqwest::Response> {
    if resp.status() == want {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp
        .text()
        .await
        .unwrap_or_else(|e| format!("(body unreadable: {e})"));
    bail!("{method} {url}: expected HTTP {want}, got {status}: {body}")
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// An image (or wasm artifact) to push with [`TestRegistry::push`].
///
/// With `artifact` set, the pushed manifest is the artifact's and `labels` and
/// `layers` must be empty.
#[derive(Debug, Clone, Default)]
pub struct TestImage {
    /// `config.Labels` of the OCI image config.
    pub labels: BTreeMap<String, String>,
    pub layers: Vec<Layer>,
    pub artifact: Option<Artifact>,
}

/// One image layer: files at paths inside the image (no leading `/`), archived
/// deterministically (mtime 0, mode 0644, uid/gid 0, in the given order).
#[derive(Debug, Clone)]
pub enum Layer {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    TarGz(Vec<(String, Vec<u8>)>),
    /// `application/vnd.oci.image.layer.v1.tar`
    Tar(Vec<(String, Vec<u8>)>),
}

/// A non-image OCI artifact (wasm component): config media type
/// `application/vnd.wasm.config.v0+json`, one layer of media type
/// `application/wasm` holding `bytes`.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub bytes: Vec<u8>,
}

struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
    digest: String,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        let digest = sha256_digest(&bytes);
        Blob {
            media_type,
            bytes,
            digest,
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// An image's blobs, ready to push.
struct BuiltImage {
    config: Blob,
    layers: Vec<Blob>,
}

impl BuiltImage {
    fn manifest(&self) -> Result<Vec<u8>> {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": self.config.descriptor(),
            "layers": self.layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&manifest).context("serializing the manifest")
    }
}

impl TestImage {
    /// `sha256:...` of layer `i` as pushed (for an artifact, layer 0 is the
    /// wasm bytes).
    ///
    /// # Panics
    /// If there is no layer `i`, or a path cannot go into a tar archive
    /// (absolute, or with `..`); [`TestRegistry::push`] reports the latter as
    /// an error instead.
    pub fn layer_digest(&self, i: usize) -> String {
        if let Some(artifact) = &self.artifact {
            assert_eq!(i, 0, "an artifact has only layer 0");
            return sha256_digest(&artifact.bytes);
        }
        let layer = self
            .layers
            .get(i)
            .unwrap_or_else(|| panic!("layer {i} of {}", self.layers.len()));
        match layer.encode() {
            Ok((blob, _)) => blob.digest,
            Err(e) => panic!("layer {i}: {e:#}"),
        }
    }

    fn build(&self) -> Result<BuiltImage> {
        if let Some(artifact) = &self.artifact {
            ensure!(
                self.labels.is_empty() && self.layers.is_empty(),
                "a TestImage with an artifact cannot also have labels or layers"
            );
            let layer = Blob::new(MEDIA_TYPE_WASM_LAYER, artifact.bytes.clone());
            // The wasm OCI artifact config (CNCF TAG Runtime's wasm-oci
            // layout); consumers need only the media type.
            let config = serde_json::json!({
                "architecture": "wasm",
                "os": "wasip2",
                "layerDigests": [layer.digest],
            });
            let config = serde_json::to_vec(&config).context("serializing the artifact config")?;
            return Ok(BuiltImage {
                config: Blob::new(MEDIA_TYPE_WASM_CONFIG, config),
                layers: vec![layer],
            });
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut diff_ids = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let (blob, diff_id) = layer.encode().with_context(|| format!("layer {i}"))?;
            layers.push(blob);
            diff_ids.push(diff_id);
        }
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": self.labels },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = serde_json::to_vec(&config).context("serializing the image config")?;
        Ok(BuiltImage {
            config: Blob::new(MEDIA_TYPE_IMAGE_CONFIG, config),
            layers,
        })
    }
}

impl Layer {
    /// The layer blob and its diff ID (digest of the uncompressed tar).
    fn encode(&self) -> Result<(Blob, String)> {
        match self {
            Layer::Tar(files) => {
                let tar = tar_bytes(files)?;
                let diff_id = sha256_digest(&tar);
                Ok((Blob::new(MEDIA_TYPE_LAYER_TAR, tar), diff_id))
            }
            Layer::TarGz(files) => {
                let tar = tar_bytes(files)?;
                let diff_id = sha256_digest(&tar);
                // GzBuilder's header has mtime 0 and no file name, so the
                // output depends only on the input.
                let mut gz =
                    flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
                gz.write_all(&tar).context("gzip-compressing the layer")?;
                let gz = gz.finish().context("gzip-compressing the layer")?;
                Ok((Blob::new(MEDIA_TYPE_LAYER_TAR_GZIP, gz), diff_id))
            }
        }
    }
}

fn tar_bytes(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        ensure!(
            !path.starts_with('/'),
            "layer path {path:?} must be relative to the image root (no leading '/')"
        );
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        tar.append_data(&mut header, path, content.as_slice())
            .with_context(|| format!("adding {path:?} to the layer"))?;
    }
    tar.into_inner().context("finishing the layer tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_log_lines() {
        let line = r#"127.0.0.1 - - [28/Nov/2026:02:15:34 +0000] "HEAD /v2/a/b/blobs/sha256:00?x=1 HTTP/1.1" 404 157 "" "curl/7.88.1""#;
        assert_eq!(
            access_log_request(line),
            Some(("HEAD", "/v2/a/b/blobs/sha256:00"))
        );
        let logrus = r#"time="x" level=info msg="response completed" http.request.method=GET http.request.uri="/v2/a/blobs/sha256:00""#;
        assert_eq!(access_log_request(logrus), None);
        assert_eq!(
            path_tail("/v2/a/blobs/uploads/u", "/blobs/"),
            None,
            "upload sessions are not blob fetches"
        );
        assert_eq!(path_tail("/v2/a/manifests/v1", "/manifests/"), Some("v1"));
    }

    #[test]
    fn layers_are_deterministic() {
        let image = TestImage {
            layers: vec![Layer::TarGz(vec![("a/b".into(), b"hi".to_vec())])],
            ..Default::default()
        };
        assert_eq!(image.layer_digest(0), image.clone().layer_digest(0));
        let built = image.build().unwrap();
        assert_eq!(built.layers[0].digest, image.layer_digest(0));
    }
}

/// Images the OCI tests share: a labelled image and an external provider image.
pub mod fixtures {
    use super::{Layer, TestImage};
    use base64::Engine;
    use std::collections::BTreeMap;

    /// spec 001's metadata example (`lls-provider-spec.yaml`).
    pub const PROVIDER_SPEC: &str = "apiVersion: llamastack.io/v1alpha1
kind: ProviderPackage
metadata: {name: acme-infer, version: 1.2.0, vendor: acme}
spec:
  packageName: acme_infer.provider
  providerType: remote::acme-infer
  api: inference
  wheelPath: /lls-provider/packages/acme_infer-1.2.0-py3-none-any.whl
";

    pub fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// An image whose labels carry `config` inline (FR-027f), schema version 2.
    pub fn labelled(config: &str) -> TestImage {
        TestImage {
            labels: BTreeMap::from([
                ("io.llamastack.config.base64".into(), b64(config)),
                ("io.llamastack.config.version".into(), "2".into()),
            ]),
            layers: vec![Layer::TarGz(vec![(
                "app/run.sh".into(),
                b"#!/bin/sh\n".to_vec(),
            )])],
            artifact: None,
        }
    }

    /// A provider image: the metadata and its wheel in one layer (spec 001 FR-001..004).
    pub fn provider_image() -> TestImage {
        TestImage {
            layers: vec![Layer::TarGz(vec![
                (
                    "lls-provider/lls-provider-spec.yaml".into(),
                    PROVIDER_SPEC.as_bytes().to_vec(),
                ),
                (
                    "lls-provider/packages/acme_infer-1.2.0-py3-none-any.whl".into(),
                    b"PK wheel".to_vec(),
                ),
            ])],
            ..Default::default()
        }
    }
}
