//! Issue 9: `make demo`, the README's first command, on the local control plane the tests
//! use: it reaches Ready, shows what was generated, leaves the operator running and prints
//! the kubeconfig path last. The demo operator is stopped afterwards (the cluster stays).
//! The test runs tests/cluster/demo with the operator binary run-tests.sh built, which is
//! what `make demo` runs after its `cargo build` (skipped here: a build for this test
//! process's feature set would recompile the TLS stack).

use anyhow::{Context, Result, ensure};
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with(program, args, &[])
}

fn run_with(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .with_context(|| format!("running {program} {args:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

#[test]
fn make_demo_reaches_ready_and_shows_what_was_generated() -> Result<()> {
    let kubeconfig = std::env::var("KUBECONFIG")
        .context("KUBECONFIG: run through tests/cluster/run-tests.sh")?;
    let bin = std::env::var("LLSD_OPERATOR_BIN")
        .context("LLSD_OPERATOR_BIN: run through tests/cluster/run-tests.sh")?;
    let out = run_with("tests/cluster/demo", &[], &[("LLSD_OPERATOR_BIN", &bin)]);
    // Whatever happened, the demo operator must not outlive the test.
    let down = run("tests/cluster/demo-down", &["--keep-cluster"]);
    let out = out?;
    down?;
    let last = out.lines().last().unwrap_or_default();
    ensure!(
        last == kubeconfig,
        "the last line is the kubeconfig path, got {last:?}"
    );
    for shown in [
        "kubectl get llsd -o wide",
        "simple   Ready",
        "ConfigGenerated=True",
        "Events about simple",
        "ConfigGenerated",
        "the generated config.yaml",
        "version: 2",
        "LLSD_VLLM_API_KEY=simple-vllm-auth",
    ] {
        ensure!(
            out.contains(shown),
            "the demo output lacks {shown:?}:\n{out}"
        );
    }
    ensure!(
        !out.contains("fake-vllm-token"),
        "a Secret value was shown:\n{out}"
    );
    Ok(())
}
