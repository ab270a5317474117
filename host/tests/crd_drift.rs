//! The committed CRD is what `llama-stack-operator crds` prints (issue 5): a change to the API
//! types without `make crds` fails here.

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/crd/llamastackdistributions.llamastack.io.yaml"
    );
    let committed = std::fs::read_to_string(path).expect("deploy/crd holds the CRD");
    let generated = llama_stack_operator::api::crd::crd_yaml().expect("the CRD builds");
    assert!(
        committed == generated,
        "{path} is out of date with the API types: run `make crds` and commit the result"
    );
}

#[test]
fn the_cli_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .arg("crds")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = llama_stack_operator::api::crd::crd_yaml().expect("the CRD builds");
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
}
