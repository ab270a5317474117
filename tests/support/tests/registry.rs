//! Tests of the OCI registry harness (`llsd_test_support::registry`) against
//! the real `docker-registry` binary. They need no cluster.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use base64::Engine as _;
use llsd_test_support::registry::{Artifact, Layer, RegistryOptions, TestImage, TestRegistry};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn image() -> TestImage {
    TestImage {
        labels: BTreeMap::from([
            ("com.example.base".to_string(), "config.yaml".to_string()),
            (
                "org.opencontainers.image.title".to_string(),
                "test".to_string(),
            ),
        ]),
        layers: vec![
            Layer::TarGz(vec![
                ("etc/llama/providers.d/a.yaml".into(), b"name: a\n".to_vec()),
                ("etc/llama/run.yaml".into(), b"version: 2\n".to_vec()),
            ]),
            Layer::Tar(vec![("opt/plugin.wasm".into(), vec![0, 97, 115, 109])]),
        ],
        artifact: None,
    }
}

/// A client that trusts `ca_pem` (only) when given; never proxied.
fn client(ca_pem: Option<&str>) -> Client {
    llsd_test_support::install_crypto_provider();
    let mut b = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    if let Some(pem) = ca_pem {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    b.build().unwrap()
}

fn url(reg: &TestRegistry, path: &str) -> String {
    format!("http://{}{path}", reg.host())
}

async fn get_ok(client: &Client, url: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = client.get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    resp
}

async fn get_bytes(client: &Client, url: &str) -> Vec<u8> {
    get_ok(client, url, None)
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// The access log line is written when the handler returns, which can be just
/// after the client has the body: wait for `want`, then check it stays there.
async fn settle(count: impl Fn() -> usize, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    count()
}

#[tokio::test]
async fn push_then_read_back_with_plain_http() {
    let reg = TestRegistry::start(RegistryOptions::default())
        .await
        .unwrap();
    assert!(reg.host().starts_with("127.0.0.1:"), "{}", reg.host());
    assert_eq!(reg.ca_pem(), None);
    let image = image();
    let digest = reg.push("team/app", "v1", &image).await.unwrap();
    let http = client(None);

    // By tag: the bytes are the manifest we computed the digest of.
    let resp = get_ok(
        &http,
        &url(&reg, "/v2/team/app/manifests/v1"),
        Some(MANIFEST),
    )
    .await;
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(resp.headers()["content-type"], MANIFEST);
    let manifest_bytes = resp.bytes().await.unwrap();
    assert_eq!(sha256(&manifest_bytes), digest);
    // By digest too. (distribution 2.8 answers 404 for an OCI manifest when the
    // Accept header does not list the OCI media type.)
    let by_digest = get_ok(
        &http,
        &url(&reg, &format!("/v2/team/app/manifests/{digest}")),
        Some(MANIFEST),
    )
    .await;
    assert_eq!(by_digest.bytes().await.unwrap(), manifest_bytes);

    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );

    // The config carries the labels and the diff IDs of the uncompressed tars.
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = get_bytes(
        &http,
        &url(&reg, &format!("/v2/team/app/blobs/{config_digest}")),
    )
    .await;
    assert_eq!(sha256(&config_bytes), config_digest);
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["config"]["Labels"]["com.example.base"],
        "config.yaml"
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "test"
    );
    assert_eq!(config["rootfs"]["type"], "layers");

    let mut tars = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let d = layer["digest"].as_str().unwrap();
        assert_eq!(d, image.layer_digest(i), "layer {i}");
        let blob = get_bytes(&http, &url(&reg, &format!("/v2/team/app/blobs/{d}"))).await;
        assert_eq!(sha256(&blob), d, "layer {i} as served");
        assert_eq!(layer["size"], blob.len(), "layer {i} size");
        let tar = if i == 0 {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob.as_slice())
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            blob
        };
        assert_eq!(config["rootfs"]["diff_ids"][i], sha256(&tar), "diff_id {i}");
        tars.push(tar);
    }

    // The files, with the deterministic metadata.
    let mut archive = tar::Archive::new(tars[0].as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(
            (
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap()
            ),
            (0o644, 0, 0, 0)
        );
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        seen.push((path, content));
    }
    assert_eq!(
        seen,
        [
            (
                "etc/llama/providers.d/a.yaml".to_string(),
                "name: a\n".to_string()
            ),
            ("etc/llama/run.yaml".to_string(), "version: 2\n".to_string()),
        ]
    );

    // Pushing the same image again gives the same digest (deterministic layers).
    assert_eq!(reg.push("team/app", "v2", &image).await.unwrap(), digest);
}

#[tokio::test]
async fn counts_blob_and_manifest_requests_from_the_access_log() {
    let reg = TestRegistry::start(RegistryOptions::default())
        .await
        .unwrap();
    let image = image();
    reg.push("counted", "v1", &image).await.unwrap();
    let http = client(None);
    let blobs = reg.blob_requests();
    let manifests = reg.manifest_requests();

    // Requests that are neither blob nor manifest fetches do not count.
    get_ok(&http, &url(&reg, "/v2/"), None).await;
    get_ok(&http, &url(&reg, "/v2/counted/tags/list"), None).await;

    let layer = image.layer_digest(0);
    for _ in 0..3 {
        get_bytes(&http, &url(&reg, &format!("/v2/counted/blobs/{layer}"))).await;
    }
    assert_eq!(settle(|| reg.blob_requests(), blobs + 3).await, blobs + 3);
    assert_eq!(reg.manifest_requests(), manifests);

    // HEAD counts, and so does a 404.
    let head = http
        .head(url(&reg, &format!("/v2/counted/blobs/{layer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let missing = http
        .get(url(
            &reg,
            &format!("/v2/counted/blobs/{}", sha256(b"absent")),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(settle(|| reg.blob_requests(), blobs + 5).await, blobs + 5);

    get_ok(
        &http,
        &url(&reg, "/v2/counted/manifests/v1"),
        Some(MANIFEST),
    )
    .await;
    assert_eq!(
        settle(|| reg.manifest_requests(), manifests + 1).await,
        manifests + 1
    );
    assert_eq!(reg.blob_requests(), blobs + 5);
}

#[tokio::test]
async fn basic_auth_refuses_anonymous_and_accepts_the_credentials() {
    let reg = TestRegistry::start(RegistryOptions {
        basic_auth: Some(("alice".into(), "s3cret pass".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = client(None);

    let anon = http.get(url(&reg, "/v2/")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let challenge = anon.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");

    let wrong = http
        .get(url(&reg, "/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let ok = http
        .get(url(&reg, "/v2/"))
        .basic_auth("alice", Some("s3cret pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // push authenticates; anonymous pulls are refused.
    let digest = reg.push("private/app", "v1", &image()).await.unwrap();
    let anon = http
        .get(url(&reg, "/v2/private/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let authed = http
        .get(url(&reg, "/v2/private/app/manifests/v1"))
        .header("Accept", MANIFEST)
        .basic_auth("alice", Some("s3cret pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), StatusCode::OK);
    assert_eq!(sha256(&authed.bytes().await.unwrap()), digest);

    let config: Value = serde_json::from_str(&reg.dockerconfigjson()).unwrap();
    let entry = &config["auths"][reg.host()];
    assert_eq!(entry["username"], "alice");
    assert_eq!(entry["password"], "s3cret pass");
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(auth, b"alice:s3cret pass");
}

#[tokio::test]
async fn tls_registry_verifies_with_its_ca() {
    let reg = TestRegistry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ca = reg.ca_pem().expect("a TLS registry has a CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let port = reg.host().rsplit_once(':').unwrap().1.to_string();
    let https = client(Some(&ca));

    // Both SANs: IP 127.0.0.1 and DNS localhost.
    for host in ["127.0.0.1", "localhost"] {
        let resp = https
            .get(format!("https://{host}:{port}/v2/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{host}");
    }

    // A client trusting another CA refuses the certificate.
    let other = TestRegistry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let untrusting = client(other.ca_pem().as_deref());
    let err = untrusting
        .get(format!("https://{}/v2/", reg.host()))
        .send()
        .await
        .expect_err("the certificate must not verify with another CA");
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP is not served.
    let plain = client(None).get(url(&reg, "/v2/")).send().await;
    assert!(
        plain
            .as_ref()
            .map_or(true, |r| r.status() != StatusCode::OK),
        "{plain:?}"
    );

    let image = image();
    let digest = reg.push("secure/app", "v1", &image).await.unwrap();
    let manifest = https
        .get(format!(
            "https://{}/v2/secure/app/manifests/{digest}",
            reg.host()
        ))
        .header("Accept", MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
    assert_eq!(sha256(&manifest.bytes().await.unwrap()), digest);
}

#[tokio::test]
async fn corrupt_blob_serves_bytes_that_do_not_match_the_digest() {
    let reg = TestRegistry::start(RegistryOptions::default())
        .await
        .unwrap();
    let image = image();
    reg.push("corrupt", "v1", &image).await.unwrap();
    let http = client(None);
    let layer = image.layer_digest(0);
    let blob_url = url(&reg, &format!("/v2/corrupt/blobs/{layer}"));
    let before = get_bytes(&http, &blob_url).await;
    assert_eq!(sha256(&before), layer);

    reg.corrupt_blob(&layer).unwrap();
    let after = get_bytes(&http, &blob_url).await;
    assert_eq!(after.len(), before.len());
    assert_ne!(sha256(&after), layer);

    assert!(reg.corrupt_blob("sha256:../../etc").is_err());
    assert!(reg.corrupt_blob(&sha256(b"never pushed")).is_err());
}

#[tokio::test]
async fn pushes_a_wasm_artifact() {
    let reg = TestRegistry::start(RegistryOptions::default())
        .await
        .unwrap();
    let bytes = b"\0asm\x0d\0\x01\0component bytes".to_vec();
    let artifact = TestImage {
        artifact: Some(Artifact {
            bytes: bytes.clone(),
        }),
        ..Default::default()
    };
    let digest = reg.push("plugins/echo", "1.0.0", &artifact).await.unwrap();
    let http = client(None);
    let manifest_bytes = get_ok(
        &http,
        &url(&reg, &format!("/v2/plugins/echo/manifests/{digest}")),
        Some(MANIFEST),
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert_eq!(sha256(&manifest_bytes), digest);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = get_bytes(
        &http,
        &url(&reg, &format!("/v2/plugins/echo/blobs/{config_digest}")),
    )
    .await;
    assert!(
        serde_json::from_slice::<Value>(&config)
            .unwrap()
            .is_object()
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], artifact.layer_digest(0));
    assert_eq!(artifact.layer_digest(0), sha256(&bytes));
    let served = get_bytes(
        &http,
        &url(
            &reg,
            &format!("/v2/plugins/echo/blobs/{}", artifact.layer_digest(0)),
        ),
    )
    .await;
    assert_eq!(served, bytes);

    // An artifact cannot also carry image layers.
    let mixed = TestImage {
        layers: image().layers,
        ..artifact
    };
    assert!(reg.push("plugins/echo", "bad", &mixed).await.is_err());
}

#[tokio::test]
async fn dropping_stops_the_registry() {
    let reg = TestRegistry::start(RegistryOptions::default())
        .await
        .unwrap();
    let http = client(None);
    let v2 = url(&reg, "/v2/");
    get_ok(&http, &v2, None).await;
    assert_eq!(reg.dockerconfigjson(), r#"{"auths":{}}"#);
    drop(reg);
    assert!(
        http.get(&v2).send().await.is_err(),
        "still answering after drop"
    );
}
