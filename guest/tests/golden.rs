//! Golden corpus (`tests/golden/<case>/`): a CR in; `config.yaml` + `generated.json`, or
//! `errors.json`, out; compared byte for byte. `make golden` rewrites the expected files
//! (LLSD_UPDATE_GOLDEN=1); the diff is then reviewed like code.
//!
//! Optional inputs per case: `base-config.yaml` (overrideConfig content or OCI label config)
//! and `provider-metadata.yaml` (external provider metadata, D16).

mod common;

use common::{case_dirs, render_case};
use std::fs;

#[test]
fn golden_corpus() {
    let update = std::env::var_os("LLSD_UPDATE_GOLDEN").is_some();
    let cases = case_dirs();
    assert!(
        cases.len() >= 30,
        "the golden corpus must have at least 30 cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let outputs = render_case(dir, llama_stack_config::generate);
        for (file, want) in &outputs {
            let path = dir.join(file);
            match want {
                Some(content) if update => fs::write(&path, content).expect("write golden file"),
                None if update => {
                    let _ = fs::remove_file(&path);
                }
                Some(content) => match fs::read_to_string(&path) {
                    Ok(have) if have == *content => {}
                    Ok(have) => failures.push(format!(
                        "{name}/{file} differs:\n--- expected\n{have}\n+++ actual\n{content}"
                    )),
                    Err(_) => failures.push(format!(
                        "{name}/{file} is missing; run `make golden` and review"
                    )),
                },
                None => {
                    if path.exists() {
                        failures.push(format!("{name}/{file} should not exist for this outcome"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
