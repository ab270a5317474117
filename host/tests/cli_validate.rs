//! `llama-stack-operator validate` (issue 6, deliverable 6): offline checks, v1alpha1 converted
//! first, field paths on errors.

use std::process::{Command, Stdio};

fn validate(stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../deploy/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample exists")
}

#[test]
fn the_samples_are_valid_in_both_versions() {
    for name in [
        "v1alpha2-simple.yaml",
        "v1alpha2-postgres.yaml",
        "v1alpha1-starter.yaml",
    ] {
        let (code, out, err) = validate(&sample(name));
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.ends_with("valid\n"), "{name}: {out}");
    }
}

#[test]
fn errors_carry_field_paths_and_the_contract_texts() {
    let (code, _, err) = validate(
        "apiVersion: llamastack.io/v1alpha2\nkind: LlamaStackDistribution\nmetadata: {name: x}\n\
         spec:\n  distribution: {name: nope}\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "spec.distribution.name: Unknown distribution \"nope\". Available distributions: "
        ),
        "FR-079d: {err}"
    );
    let (code, _, err) = validate(
        "apiVersion: llamastack.io/v1alpha2\nkind: LlamaStackDistribution\nmetadata: {name: x}\n\
         spec:\n  distribution: {name: starter}\n  resources: {models: [{name: m, provider: ghost}]}\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("spec.resources.models[0].provider"),
        "E5: {err}"
    );
}

#[test]
fn override_config_is_left_to_the_cluster_without_its_content() {
    let (code, out, err) = validate(
        "apiVersion: llamastack.io/v1alpha2\nkind: LlamaStackDistribution\nmetadata: {name: x}\n\
         spec:\n  distribution: {name: starter}\n  overrideConfig: {configMapName: mine}\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("valid\n"));
}
