//! Builds test components (the hostile guests, the example vendor plugin) with the same cargo,
//! into their own target directory, once per test process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

/// The workspace root: the nearest directory above this crate holding Cargo.lock (this module
/// is also used by tests/support).
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .unwrap_or(here)
        .to_path_buf()
}

/// `cargo build --release --target wasm32-wasip2 -p <package> [--features <feature>]`, copied
/// to a file named after the feature so several variants can coexist.
pub fn component(package: &str, feature: Option<&str>) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let target = target.join("test-plugins");
    let stem = package.replace('-', "_");
    let out = target.join(format!("{stem}-{}.wasm", feature.unwrap_or("default")));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target);
    if let Some(f) = feature {
        cmd.args(["--features", f]);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo");
    assert!(
        status.success(),
        "building {package} {feature:?} for wasm32-wasip2 failed"
    );
    let built = target
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{stem}.wasm"));
    std::fs::copy(&built, &out).expect("copy the component");
    out
}
