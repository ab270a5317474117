//! The run-wide Secret scan, the last step of `make test` (issue 19 §3; see
//! `llsd_test_support::secret_scan`). Fails on any Secret value outside Secrets, and when it
//! saw too little to prove anything (an audit log without request bodies, no operator logs).
//!
//! secret-scan [--since YYYY-MM-DDTHH:MM:SSZ] --audit-dir DIR... --logs PATH...
//!             [--min-values N] [--min-writes N] [--min-logs N]

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use llsd_test_support::secret_scan;

struct Args {
    since: Option<String>,
    audit_dirs: Vec<PathBuf>,
    logs: Vec<PathBuf>,
    min_values: usize,
    min_writes: usize,
    min_logs: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        since: None,
        audit_dirs: Vec::new(),
        logs: Vec::new(),
        min_values: 1,
        min_writes: 1,
        min_logs: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--since" => a.since = Some(value()?).filter(|s| !s.is_empty()),
            "--audit-dir" => a.audit_dirs.push(value()?.into()),
            "--logs" => a.logs.push(value()?.into()),
            "--min-values" => a.min_values = value()?.parse()?,
            "--min-writes" => a.min_writes = value()?.parse()?,
            "--min-logs" => a.min_logs = value()?.parse()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    ensure!(!a.audit_dirs.is_empty(), "no --audit-dir given");
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    let logs: Vec<PathBuf> = a.logs.into_iter().filter(|p| p.exists()).collect();
    let r = secret_scan::scan(&a.audit_dirs, &logs, a.since.as_deref())?;
    println!(
        "secret-scan: since {}: {} Secret writes, {} distinct values; {} other writes ({:.1} MiB of request bodies) in {} audit log(s); {} operator log(s), {:.1} MiB",
        a.since.as_deref().unwrap_or("the start of the logs"),
        r.secret_writes,
        r.values,
        r.writes_scanned,
        r.write_bytes as f64 / 1048576.0,
        r.audit_files.len(),
        r.log_files.len(),
        r.log_bytes as f64 / 1048576.0,
    );
    for f in &r.findings {
        println!(
            "secret-scan: FOUND the value of {} in {}",
            f.origin, f.place
        );
    }
    ensure!(
        r.findings.is_empty(),
        "{} Secret value(s) outside Secrets (above)",
        r.findings.len()
    );
    ensure!(
        r.values >= a.min_values,
        "only {} Secret values in the audit logs (expected at least {}): were the API servers started with request bodies in their audit policy (tests/cluster/up)?",
        r.values,
        a.min_values
    );
    ensure!(
        r.writes_scanned >= a.min_writes,
        "only {} writes scanned (expected at least {})",
        r.writes_scanned,
        a.min_writes
    );
    ensure!(
        r.log_files.len() >= a.min_logs,
        "only {} operator logs (expected at least {}): was LLSD_TEST_LOG_DIR set for the tests?",
        r.log_files.len(),
        a.min_logs
    );
    println!("secret-scan: no Secret value outside Secrets");
    Ok(())
}
