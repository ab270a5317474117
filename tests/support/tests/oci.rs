//! Issue 8: the operator's registry reads (`llama_stack_operator::oci`) against a real registry
//! (Debian's docker-registry on loopback) holding images these tests build and push: config
//! labels (FR-027f..j), the digest cache (FR-027i, NFR-006), pull credentials (FR-027h),
//! provider metadata (spec 001, D16), plugin artifacts (D18) and every failure (D17).

use anyhow::{Context, Result, ensure};
use llama_stack_operator::oci::{Credentials, OciError, Registry, RegistrySettings};
use llsd_test_support::registry::fixtures::{PROVIDER_SPEC, b64};
use llsd_test_support::registry::{Artifact, Layer, RegistryOptions, TestImage, TestRegistry};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

const CONFIG: &str =
    "version: 2\nimage_name: labelled\napis: [inference]\nproviders:\n  inference: []\n";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn app_layer() -> Layer {
    Layer::TarGz(vec![("app/bin/server".into(), b"#!/bin/sh\n".to_vec())])
}

fn image(labels: BTreeMap<String, String>, layers: Vec<Layer>) -> TestImage {
    TestImage {
        labels,
        layers,
        artifact: None,
    }
}

/// A client for `reg` the way the operator is configured for it.
fn client_for(reg: &TestRegistry) -> Registry {
    let mut settings = RegistrySettings {
        timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    match reg.ca_pem() {
        Some(ca) => settings.ca_pem = ca.into_bytes(),
        None => settings.plain_http = vec![reg.host()],
    }
    Registry::new(settings)
}

fn anon() -> Credentials {
    Credentials::anonymous("default")
}

fn reason(r: Result<impl std::fmt::Debug, OciError>) -> Result<(String, String)> {
    match r {
        Ok(v) => anyhow::bail!("expected a failure, got {v:?}"),
        Err(e) => Ok((e.reason().to_string(), e.to_string())),
    }
}

#[tokio::test]
async fn base64_label_is_read_once_per_digest() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let img = image(
        labels(&[
            ("io.llamastack.config.base64", &b64(CONFIG)),
            ("io.llamastack.config.version", "2"),
        ]),
        vec![app_layer()],
    );
    let digest = reg.push("acme/stack", "1.0", &img).await?;
    let ops = client_for(&reg);
    let reference = format!("{}/acme/stack:1.0", reg.host());

    let (pinned, config) = ops.image_config(&reference, &anon()).await?;
    let config = config.context("labels found")?;
    ensure!(config.yaml == CONFIG && config.version == Some(2) && !config.from_layer);
    ensure!(pinned.digest == digest, "{pinned:?} vs {digest}");
    ensure!(pinned.reference == format!("{}/acme/stack@{digest}", reg.host()));

    // FR-027i: a second read of the unchanged tag only resolves the tag; no blob is fetched.
    let blobs = reg.blob_requests();
    let manifests = reg.manifest_requests();
    let (again, config2) = ops.image_config(&reference, &anon()).await?;
    ensure!(again == pinned && config2.as_ref().map(|c| &c.yaml) == Some(&config.yaml));
    ensure!(
        reg.blob_requests() == blobs,
        "blob requests went from {blobs} to {}",
        reg.blob_requests()
    );
    ensure!(
        reg.manifest_requests() == manifests + 1,
        "one manifest HEAD"
    );
    // By digest: nothing at all.
    let by_digest = format!("{}/acme/stack@{digest}", reg.host());
    ops.image_config(&by_digest, &anon()).await?;
    ensure!(reg.blob_requests() == blobs && reg.manifest_requests() == manifests + 1);

    // A moved tag is a new digest, read anew.
    let img2 = image(
        labels(&[(
            "io.llamastack.config.base64",
            &b64("version: 2\nimage_name: v2\n"),
        )]),
        vec![app_layer()],
    );
    let digest2 = reg.push("acme/stack", "1.0", &img2).await?;
    let (moved, config3) = ops.image_config(&reference, &anon()).await?;
    ensure!(moved.digest == digest2 && config3.context("labels")?.yaml.contains("v2"));
    ensure!(reg.blob_requests() > blobs);
    ensure!(ops.counters.blob_requests.load(Ordering::Relaxed) >= 2);
    Ok(())
}

/// A registry outage does not fail a tag that resolved before: its last digest (and the
/// config cached for it) is kept; a tag never seen fails as unreachable.
#[tokio::test]
async fn an_outage_keeps_the_last_digest_of_a_tag() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let digest = reg
        .push(
            "acme/stack",
            "1.0",
            &image(
                labels(&[("io.llamastack.config.base64", &b64(CONFIG))]),
                vec![app_layer()],
            ),
        )
        .await?;
    let ops = client_for(&reg);
    let reference = format!("{}/acme/stack:1.0", reg.host());
    let never = format!("{}/acme/other:1.0", reg.host());
    ops.image_config(&reference, &anon()).await?;
    drop(reg);
    let (pinned, config) = ops.image_config(&reference, &anon()).await?;
    ensure!(pinned.digest == digest && config.is_some_and(|c| c.yaml == CONFIG));
    let (r, msg) = reason(ops.image_config(&never, &anon()).await)?;
    ensure!(r == "RegistryUnreachable", "{r}: {msg}");
    Ok(())
}

#[tokio::test]
async fn layer_label_reads_only_the_named_layer() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let config_layer = Layer::Tar(vec![(
        "etc/llama-stack/config.yaml".into(),
        CONFIG.as_bytes().to_vec(),
    )]);
    let mut img = image(
        BTreeMap::new(),
        vec![app_layer(), config_layer, app_layer()],
    );
    let layer_digest = img.layer_digest(1);
    img.labels = labels(&[
        ("io.llamastack.config.layer", &layer_digest),
        ("io.llamastack.config.path", "/etc/llama-stack/config.yaml"),
    ]);
    reg.push("acme/big", "2.0", &img).await?;
    let ops = client_for(&reg);
    let before = reg.blob_requests();
    let (_, config) = ops
        .image_config(&format!("{}/acme/big:2.0", reg.host()), &anon())
        .await?;
    let config = config.context("config found")?;
    ensure!(config.yaml == CONFIG && config.from_layer);
    // The config blob and the one layer: not the two others.
    ensure!(
        reg.blob_requests() - before == 2,
        "{} blob requests",
        reg.blob_requests() - before
    );

    // The label pointing at a file the layer does not have.
    img.labels
        .insert("io.llamastack.config.path".into(), "nope.yaml".into());
    reg.push("acme/big", "broken", &img).await?;
    let (r, msg) = reason(
        ops.image_config(&format!("{}/acme/big:broken", reg.host()), &anon())
            .await,
    )?;
    ensure!(
        r == "ImageFileMissing" && msg.contains("nope.yaml"),
        "{r}: {msg}"
    );
    Ok(())
}

#[tokio::test]
async fn no_label_means_no_config_and_bad_labels_are_named() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let ops = client_for(&reg);
    reg.push(
        "acme/plain",
        "1",
        &image(BTreeMap::new(), vec![app_layer()]),
    )
    .await?;
    let (_, none) = ops
        .image_config(&format!("{}/acme/plain:1", reg.host()), &anon())
        .await?;
    ensure!(none.is_none());

    for (tag, l, want) in [
        (
            "bad64",
            labels(&[("io.llamastack.config.base64", "%%% not base64")]),
            "InvalidConfigLabel",
        ),
        (
            "both",
            labels(&[
                ("io.llamastack.config.base64", &b64(CONFIG)),
                (
                    "io.llamastack.config.layer",
                    &format!("sha256:{}", "a".repeat(64)),
                ),
            ]),
            "InvalidConfigLabel",
        ),
        (
            "foreign-layer",
            labels(&[
                (
                    "io.llamastack.config.layer",
                    &format!("sha256:{}", "b".repeat(64)),
                ),
                ("io.llamastack.config.path", "config.yaml"),
            ]),
            "InvalidConfigLabel",
        ),
        (
            "huge",
            labels(&[("io.llamastack.config.base64", &b64(&"#".repeat(60 * 1024)))]),
            "ConfigLabelTooLarge",
        ),
    ] {
        reg.push("acme/labels", tag, &image(l, vec![app_layer()]))
            .await?;
        let (r, msg) = reason(
            ops.image_config(&format!("{}/acme/labels:{tag}", reg.host()), &anon())
                .await,
        )?;
        ensure!(r == want, "{tag}: {r}: {msg}");
        ensure!(
            msg.contains(&format!("acme/labels:{tag}")),
            "names the image: {msg}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn private_registry_needs_the_pull_secret() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions {
        tls: true,
        basic_auth: Some(("puller".into(), "pa55-w0rd".into())),
    })
    .await?;
    let img = image(
        labels(&[("io.llamastack.config.base64", &b64(CONFIG))]),
        vec![app_layer()],
    );
    reg.push("team/private", "1", &img).await?;
    let reference = format!("{}/team/private:1", reg.host());
    let ops = client_for(&reg);

    let (r, msg) = reason(
        ops.image_config(&reference, &Credentials::anonymous("my-sa"))
            .await,
    )?;
    ensure!(r == "RegistryUnauthorized", "{r}: {msg}");
    ensure!(
        msg.contains("my-sa") && msg.contains(&reg.host()),
        "actionable: {msg}"
    );

    let mut creds = Credentials::anonymous("my-sa");
    creds.add_secret("pull", reg.dockerconfigjson().as_bytes(), false)?;
    let (_, config) = ops.image_config(&reference, &creds).await?;
    ensure!(config.context("labels")?.yaml == CONFIG);
    // Wrong password: refused, and the password is not in the message.
    let mut wrong = Credentials::anonymous("my-sa");
    wrong.add_secret(
        "pull",
        format!(
            r#"{{"auths":{{"{}":{{"username":"puller","password":"guessed-wrong"}}}}}}"#,
            reg.host()
        )
        .as_bytes(),
        false,
    )?;
    let (r, msg) = reason(client_for(&reg).image_config(&reference, &wrong).await)?;
    ensure!(
        r == "RegistryUnauthorized" && !msg.contains("guessed-wrong"),
        "{r}: {msg}"
    );

    // Without the registry's CA the TLS handshake fails: unreachable, with the cause.
    let no_ca = Registry::new(RegistrySettings::default());
    let (r, msg) = reason(no_ca.image_config(&reference, &creds).await)?;
    ensure!(r == "RegistryUnreachable", "{r}: {msg}");
    Ok(())
}

#[tokio::test]
async fn registry_failures_are_reported_with_their_reason() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let ops = client_for(&reg);
    let (r, msg) = reason(
        ops.image_config(&format!("{}/acme/missing:1", reg.host()), &anon())
            .await,
    )?;
    ensure!(r == "ImageNotFound", "{r}: {msg}");

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dead = Registry::new(RegistrySettings {
        plain_http: vec![closed.to_string()],
        ..Default::default()
    });
    let (r, msg) = reason(
        dead.image_config(&format!("{closed}/acme/x:1"), &anon())
            .await,
    )?;
    ensure!(
        r == "RegistryUnreachable" && msg.contains(&closed.to_string()),
        "{r}: {msg}"
    );

    let (r, _) = reason(ops.image_config("Not A Reference!", &anon()).await)?;
    ensure!(r == "InvalidImageReference");

    // The registry serves a layer whose bytes no longer match its digest.
    let config_layer = Layer::TarGz(vec![("config.yaml".into(), CONFIG.as_bytes().to_vec())]);
    let mut img = image(BTreeMap::new(), vec![config_layer]);
    let d = img.layer_digest(0);
    img.labels = labels(&[
        ("io.llamastack.config.layer", &d),
        ("io.llamastack.config.path", "config.yaml"),
    ]);
    reg.push("acme/corrupt", "1", &img).await?;
    reg.corrupt_blob(&d)?;
    let (r, msg) = reason(
        ops.image_config(&format!("{}/acme/corrupt:1", reg.host()), &anon())
            .await,
    )?;
    ensure!(r == "ImageDigestMismatch" && msg.contains(&d), "{r}: {msg}");
    Ok(())
}

#[tokio::test]
async fn provider_metadata_is_read_and_validated() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let ops = client_for(&reg);
    let wheel = "lls-provider/packages/acme_infer-1.2.0-py3-none-any.whl";
    let provider_layer = Layer::TarGz(vec![
        (
            "lls-provider/lls-provider-spec.yaml".into(),
            PROVIDER_SPEC.as_bytes().to_vec(),
        ),
        (wheel.into(), b"PK fake wheel".to_vec()),
    ]);
    reg.push(
        "acme/provider",
        "1.2.0",
        &image(BTreeMap::new(), vec![app_layer(), provider_layer]),
    )
    .await?;
    let reference = format!("{}/acme/provider:1.2.0", reg.host());
    let (pinned, p) = ops.provider_package(&reference, &anon()).await?;
    ensure!(p.provider_type == "remote::acme-infer" && p.package_name == "acme_infer.provider");
    ensure!(p.api == "inference" && pinned.reference.contains("@sha256:"));
    // Cached by digest.
    let blobs = reg.blob_requests();
    ops.provider_package(&reference, &anon()).await?;
    ensure!(reg.blob_requests() == blobs);

    // The wheel in a lower layer than the spec is found too.
    reg.push(
        "acme/provider",
        "split",
        &image(
            BTreeMap::new(),
            vec![
                Layer::Tar(vec![(wheel.into(), b"PK".to_vec())]),
                Layer::Tar(vec![(
                    "lls-provider/lls-provider-spec.yaml".into(),
                    PROVIDER_SPEC.as_bytes().to_vec(),
                )]),
            ],
        ),
    )
    .await?;
    ops.provider_package(&format!("{}/acme/provider:split", reg.host()), &anon())
        .await?;

    let cases: Vec<(&str, Vec<Layer>, &str, &str)> = vec![
        (
            "no-spec",
            vec![app_layer()],
            "ImageFileMissing",
            "Missing /lls-provider/lls-provider-spec.yaml in image",
        ),
        (
            "deleted-spec",
            vec![
                Layer::Tar(vec![
                    (
                        "lls-provider/lls-provider-spec.yaml".into(),
                        PROVIDER_SPEC.as_bytes().to_vec(),
                    ),
                    (wheel.into(), b"PK".to_vec()),
                ]),
                Layer::Tar(vec![(
                    "lls-provider/.wh.lls-provider-spec.yaml".into(),
                    Vec::new(),
                )]),
            ],
            "ImageFileMissing",
            "Missing /lls-provider/lls-provider-spec.yaml",
        ),
        (
            "no-wheel",
            vec![Layer::Tar(vec![(
                "lls-provider/lls-provider-spec.yaml".into(),
                PROVIDER_SPEC.as_bytes().to_vec(),
            )])],
            "InvalidImageFile",
            "spec.wheelPath",
        ),
        (
            "bad-spec",
            vec![Layer::Tar(vec![(
                "lls-provider/lls-provider-spec.yaml".into(),
                PROVIDER_SPEC
                    .replace("remote::acme-infer", "acme")
                    .into_bytes(),
            )])],
            "InvalidImageFile",
            "spec.providerType",
        ),
    ];
    for (tag, layers, want, text) in cases {
        reg.push("acme/provider", tag, &image(BTreeMap::new(), layers))
            .await?;
        let (r, msg) = reason(
            ops.provider_package(&format!("{}/acme/provider:{tag}", reg.host()), &anon())
                .await,
        )?;
        ensure!(r == want && msg.contains(text), "{tag}: {r}: {msg}");
    }
    Ok(())
}

#[tokio::test]
async fn plugin_artifacts_are_fetched_by_digest_only() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let ops = client_for(&reg);
    let wasm = b"\0asm\x0d\0\x01\0 not really a component".to_vec();
    let img = TestImage {
        artifact: Some(Artifact {
            bytes: wasm.clone(),
        }),
        ..Default::default()
    };
    let digest = reg.push("acme/plugin", "1", &img).await?;
    let by_digest = format!("{}/acme/plugin@{digest}", reg.host());
    ensure!(ops.artifact(&by_digest, &anon()).await? == wasm);
    let (r, msg) = reason(
        ops.artifact(&format!("{}/acme/plugin:1", reg.host()), &anon())
            .await,
    )?;
    ensure!(
        r == "InvalidImageReference" && msg.contains("pinned by digest"),
        "{r}: {msg}"
    );
    // A digest that is not the manifest's is refused, not served.
    let wrong = format!("{}/acme/plugin@sha256:{}", reg.host(), "0".repeat(64));
    let (r, msg) = reason(ops.artifact(&wrong, &anon()).await)?;
    ensure!(
        r == "ImageNotFound" || r == "ImageDigestMismatch",
        "{r}: {msg}"
    );
    // An image is not a plugin.
    let plain = reg
        .push(
            "acme/plain",
            "1",
            &image(BTreeMap::new(), vec![app_layer()]),
        )
        .await?;
    let (r, _) = reason(
        ops.artifact(&format!("{}/acme/plain@{plain}", reg.host()), &anon())
            .await,
    )?;
    ensure!(r == "UnsupportedImage", "{r}");
    Ok(())
}
