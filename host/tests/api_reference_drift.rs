//! The committed API reference is what `llama-stack-operator api-reference` prints (issue 9):
//! a change to the API types (their fields, doc comments, rules or printer columns) without
//! `make api-reference` fails here.

#[test]
fn committed_api_reference_matches_the_cli() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api-reference.md");
    let committed = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}: run `make api-reference` and commit the result"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .arg("api-reference")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "llama-stack-operator api-reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("the API reference is UTF-8");
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{path} is out of date with the CRD schema (first difference at line {}): \
             run `make api-reference` and commit the result",
            line + 1
        );
    }
}

#[test]
fn api_reference_covers_both_versions_storage_first() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api-reference.md");
    let doc = std::fs::read_to_string(path).expect("docs/api-reference.md exists");
    assert!(
        doc.contains("Do not edit"),
        "the header says it is generated"
    );
    let v2 = doc.find("\n## v1alpha2\n").expect("a v1alpha2 section");
    let v1 = doc.find("\n## v1alpha1\n").expect("a v1alpha1 section");
    assert!(v2 < v1, "v1alpha2, the storage version, comes first");
    for needle in [
        "| `spec.providers.inference[].apiKey.secretKeyRef.name` |",
        "### Printer columns",
        "Rules:",
    ] {
        assert!(doc.contains(needle), "the API reference lacks {needle:?}");
    }
}
