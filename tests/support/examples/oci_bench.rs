//! Registry-read benchmark (issue 8, FR-027i, NFR-006): what the digest cache saves per
//! reconcile. A loopback docker-registry holds three images the bench builds:
//!   - a label image (config.yaml inline, base64);
//!   - a layer image (config.yaml in its own layer, next to a 32 MiB layer never read);
//!   - a provider image (lls-provider-spec.yaml and a 32 MiB wheel in one layer).
//!
//! For each, it times the first read (a fresh client: nothing cached), then reads of the
//! cached image by tag (one manifest HEAD) and by digest (no request), and counts the blob
//! requests the registry logged per read.
//!
//! Run: `tests/bench/oci.sh` (release build; installs docker-registry when missing).

use anyhow::{Context, Result};
use llama_stack_operator::oci::{Credentials, Registry, RegistrySettings};
use llsd_test_support::registry::fixtures::{PROVIDER_SPEC, b64};
use llsd_test_support::registry::{Layer, RegistryOptions, TestImage, TestRegistry};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const BIG: usize = 32 * 1024 * 1024;

/// Incompressible filler (xorshift), so gzip does not shrink the big layers away.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Clone, Copy)]
enum Kind {
    Labels,
    Provider,
}

async fn read(reg: &Registry, kind: Kind, image: &str) -> Result<()> {
    let creds = Credentials::anonymous("default");
    match kind {
        Kind::Labels => {
            let (_, c) = reg.image_config(image, &creds).await?;
            c.context("labels")?;
        }
        Kind::Provider => {
            reg.provider_package(image, &creds).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let registry = TestRegistry::start(RegistryOptions::default()).await?;
    let host = registry.host();
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/starter/config.yaml"
    ))?;
    let app = || Layer::TarGz(vec![("app/bin/server".into(), noise(BIG))]);

    let labels = TestImage {
        labels: BTreeMap::from([("io.llamastack.config.base64".into(), b64(&config))]),
        layers: vec![app()],
        artifact: None,
    };
    let mut layered = TestImage {
        layers: vec![
            app(),
            Layer::TarGz(vec![(
                "etc/llama-stack/config.yaml".into(),
                config.clone().into_bytes(),
            )]),
        ],
        ..Default::default()
    };
    let config_layer = layered.layer_digest(1);
    layered.labels = BTreeMap::from([
        ("io.llamastack.config.layer".into(), config_layer),
        (
            "io.llamastack.config.path".into(),
            "etc/llama-stack/config.yaml".into(),
        ),
    ]);
    let provider = TestImage {
        layers: vec![Layer::TarGz(vec![
            (
                "lls-provider/lls-provider-spec.yaml".into(),
                PROVIDER_SPEC.as_bytes().to_vec(),
            ),
            (
                "lls-provider/packages/acme_infer-1.2.0-py3-none-any.whl".into(),
                noise(BIG),
            ),
        ])],
        ..Default::default()
    };
    let mut cases = Vec::new();
    for (name, repo, img, kind) in [
        (
            "label (base64), 32 MiB image",
            "bench/labels",
            &labels,
            Kind::Labels,
        ),
        (
            "label (layer + path), 32 MiB unrelated layer",
            "bench/layered",
            &layered,
            Kind::Labels,
        ),
        (
            "provider metadata, 32 MiB wheel layer",
            "bench/provider",
            &provider,
            Kind::Provider,
        ),
    ] {
        let digest = registry.push(repo, "1", img).await?;
        cases.push((
            name,
            format!("{host}/{repo}:1"),
            format!("{host}/{repo}@{digest}"),
            kind,
        ));
    }

    let settings = || RegistrySettings {
        plain_http: vec![host.clone()],
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    println!("| image | read | p50 | p99 | blob requests per read |");
    println!("|---|---|---|---|---|");
    for (name, tag, digest, kind) in &cases {
        // Cold: a fresh client every time, so nothing is cached.
        let mut cold = Vec::new();
        let before = registry.blob_requests();
        for _ in 0..10 {
            let fresh = Registry::new(settings());
            let t = Instant::now();
            read(&fresh, *kind, tag).await?;
            cold.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cold_blobs = (registry.blob_requests() - before) as f64 / 10.0;
        let warm = Registry::new(settings());
        read(&warm, *kind, tag).await?;
        let mut rows = vec![("first read (cold)", cold, cold_blobs)];
        for (label, reference) in [("cached, by tag", tag), ("cached, by digest", digest)] {
            let before = registry.blob_requests();
            let mut times = Vec::new();
            for _ in 0..200 {
                let t = Instant::now();
                read(&warm, *kind, reference).await?;
                times.push(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let blobs = (registry.blob_requests() - before) as f64 / 200.0;
            rows.push((label, times, blobs));
        }
        for (label, mut times, blobs) in rows {
            times.sort();
            println!(
                "| {name} | {label} | {} | {} | {blobs} |",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99))
            );
        }
    }
    Ok(())
}
