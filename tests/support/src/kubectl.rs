//! The kubectl that `tests/cluster/build.sh` built, for tests that exercise what users type
//! (`apply -f`, `kustomize`, printer columns). `run-tests.sh` sets `LLSD_KUBECTL`.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, ensure};

/// Runs kubectl with the test's `KUBECONFIG`, feeding it `stdin`; fails unless it exits 0
/// (the error carries stderr and stdout). Returns stdout.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let bin = std::env::var_os("LLSD_KUBECTL").ok_or_else(|| {
        anyhow!("LLSD_KUBECTL is unset: run the cluster tests with tests/cluster/run-tests.sh")
    })?;
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {bin:?}"))?;
    if let Some(input) = stdin {
        // Written from a thread: kubectl may start answering before it has read everything.
        let mut pipe = child.stdin.take().context("kubectl's stdin")?;
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "kubectl {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
