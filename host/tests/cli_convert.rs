//! `llama-stack-operator convert` (issue 6, deliverable 6): a v1alpha1 sample goes to v1alpha2
//! and back unchanged; bad input exits 1 with the field path.

use std::process::Command;

fn operator(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_v1alpha1_sample_converts_up_and_back() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/samples/v1alpha1-starter.yaml"
    );
    let (code, up, err) = operator(&["convert", "--to", "v1alpha2", "-f", sample], None);
    assert_eq!(code, 0, "{err}");
    let hub: serde_json::Value = serde_yaml::from_str(&up).expect("YAML out");
    assert_eq!(hub["apiVersion"], "llamastack.io/v1alpha2");
    assert_eq!(hub["spec"]["workload"]["workers"], 2);
    assert_eq!(hub["spec"]["networking"]["expose"]["enabled"], true);
    let (code, down, err) = operator(
        &["convert", "--to", "v1alpha1", "-f", "-", "-o", "json"],
        Some(&up),
    );
    assert_eq!(code, 0, "{err}");
    let back: serde_json::Value = serde_json::from_str(&down).expect("JSON out");
    let original: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(sample).expect("sample"))
            .expect("sample parses");
    assert_eq!(back, original);
}

#[test]
fn a_bad_object_exits_1_with_the_path() {
    let (code, _, err) = operator(
        &["convert", "--to", "v1alpha2", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\n"),
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("kind: only LlamaStackDistribution objects convert"),
        "{err}"
    );
}

/// `generate` on a v1alpha1 file gives what the API server's conversion followed by
/// generation gives: the config the operator writes for that object.
#[test]
fn generate_converts_a_v1alpha1_file_first() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/samples/v1alpha1-starter.yaml"
    );
    let (code, direct, err) = operator(&["generate", "-f", sample], None);
    assert_eq!(code, 0, "{err}");
    let (code, hub, err) = operator(&["convert", "--to", "v1alpha2", "-f", sample], None);
    assert_eq!(code, 0, "{err}");
    let (code, via_hub, err) = operator(&["generate", "-f", "-"], Some(&hub));
    assert_eq!(code, 0, "{err}");
    assert_eq!(direct, via_hub);
    assert!(direct.starts_with("version: 2\n"), "{direct}");
}
