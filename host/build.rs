//! Builds the default plugin (the `guest/` crate as a `wasm32-wasip2` component) and embeds it
//! in the operator binary. A nested cargo with its own target directory: sharing the outer one
//! would deadlock on its lock. Set LLSD_PLUGIN_WASM to embed a prebuilt component instead.
//! The component is also precompiled for this machine's wasmtime engine and embedded.

use std::path::PathBuf;
use std::process::Command;

#[path = "src/plugin/engine_config.rs"]
mod engine_config;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("..");
    for p in [
        "guest/src",
        "guest/Cargo.toml",
        "guest/build.rs",
        "configs",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=LLSD_PLUGIN_WASM");
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("src/plugin/engine_config.rs").display()
    );

    let wasm = match std::env::var_os("LLSD_PLUGIN_WASM") {
        Some(p) => PathBuf::from(p),
        None => build_plugin(&root),
    };
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("cannot read the default plugin {}: {e}", wasm.display()));
    // A component starts with the wasm magic and layer 1 (0x0d 0x00 0x01 0x00).
    assert!(
        bytes.starts_with(b"\0asm\x0d\x00\x01\x00"),
        "{} is not a WebAssembly component",
        wasm.display()
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("default-plugin.wasm");
    std::fs::write(&out, &bytes).expect("write default-plugin.wasm");
    // Compiled here, once, with the runtime's engine settings: the operator and the CLI load
    // machine code at start instead of running cranelift (1-2 s) every time.
    let engine = wasmtime::Engine::new(&engine_config::engine_config())
        .unwrap_or_else(|e| panic!("cannot create the wasmtime engine: {e}"));
    let code = engine
        .precompile_component(&bytes)
        .unwrap_or_else(|e| panic!("cannot precompile the default plugin: {e:#}"));
    std::fs::write(out.with_extension("cwasm"), code).expect("write default-plugin.cwasm");
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=LLSD_DEFAULT_PLUGIN_SHA256={hex}");
}

fn build_plugin(root: &PathBuf) -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugin-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "llama-stack-config",
            "--target",
            "wasm32-wasip2",
            // One codegen unit and full LTO: about 7% faster per call than the workspace's
            // release profile, for some seconds more of build.
            "--config",
            "profile.release.lto=\"fat\"",
            "--config",
            "profile.release.codegen-units=1",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's flags (coverage instrumentation, host-only options) must not leak
    // into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && (k.starts_with("CARGO_LLVM_COV")
                || k.starts_with("LLVM_PROFILE")
                || k.starts_with("CARGO_PROFILE_"))
        {
            cmd.env_remove(k);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for the default plugin: {e}"));
    assert!(
        status.success(),
        "building the default plugin failed; is the wasm32-wasip2 target installed? `make wasm-target` (or `rustup target add wasm32-wasip2`) installs it"
    );
    target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join("llama_stack_config.wasm")
}
