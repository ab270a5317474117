//! Fuzz target of the webhook endpoints (issue 19 §2): AdmissionReview and ConversionReview
//! bodies built from the samples and the golden CRs, edited at random places, damaged as bytes,
//! or random bytes, sent to `/convert`, `/validate` and `/mutate` of the real router (in
//! process, without TLS: the handlers are what is fuzzed). Every answer is a review the API
//! server can read, or a 4xx with a reason; never a 5xx, never a panic. Plus the hostile
//! extremes: 10 MB bodies and nesting 10,000 deep.
//!
//! `make test` runs a short run; `make fuzz` (`LLSD_FUZZ_CASES=1000000 cargo test -p
//! llama-stack-operator --test fuzz_webhooks`) is the note's run.

#[path = "../../guest/tests/common/mutate.rs"]
mod mutate;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use llama_stack_operator::webhook::{self, Webhooks};
use mutate::{apply, arb_byte_ops, arb_edits, cases, damage};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value as Json, json};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const ENDPOINTS: [&str; 3] = ["/convert", "/validate", "/mutate"];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// LlamaStackDistribution objects of both versions: the samples and the golden CRs.
    objects: Vec<Json>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files: Vec<_> = std::fs::read_dir(root.join("deploy/samples"))
            .expect("deploy/samples")
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        files.extend(
            std::fs::read_dir(root.join("tests/golden"))
                .expect("tests/golden")
                .filter_map(|e| Some(e.ok()?.path().join("cr.yaml"))),
        );
        let mut objects = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let Ok(v) = <Json as serde::Deserialize>::deserialize(doc) else {
                    continue;
                };
                if v["kind"] == "LlamaStackDistribution" {
                    objects.push(v);
                }
            }
        }
        assert!(objects.len() > 50, "seed objects found: {}", objects.len());
        let hooks = Webhooks::with_builtin(None).expect("built-in plugin loads");
        Fixture {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime"),
            router: webhook::router(Arc::new(hooks)),
            objects,
        }
    })
}

fn admission_review(object: &Json, old: Option<&Json>) -> Json {
    let version = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or("v1alpha2");
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4f3a5b2e-0000-4000-8000-000000000001",
            "kind": {"group": "llamastack.io", "version": version, "kind": "LlamaStackDistribution"},
            "resource": {"group": "llamastack.io", "version": version, "resource": "llamastackdistributions"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"].as_str().unwrap_or("default"),
            "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
            "userInfo": {"username": "fuzz"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

fn conversion_review(objects: &[&Json], to: &str) -> Json {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "4f3a5b2e-0000-4000-8000-000000000002",
            "desiredAPIVersion": to,
            "objects": objects
        }
    })
}

/// What came back: status and body.
fn post(path: &str, body: Vec<u8>, json_type: bool) -> (StatusCode, Vec<u8>) {
    let f = fixture();
    let mut req = Request::post(path);
    if json_type {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Body::from(body)).expect("request");
    f.runtime.block_on(async {
        let resp = f.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, bytes)
    })
}

/// The property every answer keeps: a review with a response (a failure carries a message),
/// or a client error with a reason.
fn check_answer(
    path: &str,
    sent: Option<&Json>,
    status: StatusCode,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    if status != StatusCode::OK {
        prop_assert!(
            [
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(&status),
            "{path} answered {status}: {text}"
        );
        prop_assert!(
            !text.trim().is_empty(),
            "{path} answered {status} without a reason"
        );
        return Ok(());
    }
    let review: Json = serde_json::from_slice(body).map_err(|e| {
        TestCaseError::fail(format!("{path} answered 200 with no JSON ({e}): {text}"))
    })?;
    let response = &review["response"];
    prop_assert!(response.is_object(), "{path}: no response in {text}");
    if path == "/convert" {
        let result = &response["result"];
        match result["status"].as_str() {
            Some("Success") => {
                let sent_n = sent
                    .and_then(|s| s["request"]["objects"].as_array())
                    .map(Vec::len);
                let got_n = response["convertedObjects"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                if let Some(n) = sent_n {
                    prop_assert_eq!(n, got_n, "objects in and out: {}", text);
                }
            }
            Some("Failure") => prop_assert!(
                !result["message"].as_str().unwrap_or("").trim().is_empty(),
                "conversion failure without a message: {text}"
            ),
            other => prop_assert!(false, "conversion result status {other:?}: {text}"),
        }
    } else {
        let allowed = response["allowed"].as_bool();
        prop_assert!(allowed.is_some(), "{path}: no allowed in {text}");
        if allowed == Some(false) {
            prop_assert!(
                !response["status"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .is_empty(),
                "{path}: a denial without a message: {text}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1500), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn webhook_bodies(
        endpoint in 0usize..3,
        a in any::<Index>(),
        b in any::<Index>(),
        mode in 0u8..8,
        update in any::<bool>(),
        to_v1alpha1 in any::<bool>(),
        edits in arb_edits(4),
        bytes in arb_byte_ops(4),
        random in prop::collection::vec(any::<u8>(), 0..512),
        json_type in prop::bool::weighted(0.95),
    ) {
        let f = fixture();
        let path = ENDPOINTS[endpoint];
        let (x, y) = (&f.objects[a.index(f.objects.len())], &f.objects[b.index(f.objects.len())]);
        let mut review = if path == "/convert" {
            let to = if to_v1alpha1 { "llamastack.io/v1alpha1" } else { "llamastack.io/v1alpha2" };
            conversion_review(&[x, y], to)
        } else {
            admission_review(x, update.then_some(y))
        };
        let body = match mode {
            // A structurally valid review.
            0 => serde_json::to_vec(&review).unwrap_or_default(),
            // Random bytes.
            1 => random,
            // The review's JSON damaged as bytes.
            2 => {
                let mut body = serde_json::to_vec(&review).unwrap_or_default();
                damage(&mut body, &bytes);
                body
            }
            // The review edited anywhere (the request's fields, the objects' content).
            _ => {
                apply(&mut review, &edits);
                serde_json::to_vec(&review).unwrap_or_default()
            }
        };
        let sent: Option<Json> = serde_json::from_slice(&body).ok();
        let (status, answer) = post(path, body, json_type);
        check_answer(path, sent.as_ref(), status, &answer)?;
    }
}

/// A ConversionReview and an AdmissionReview of 10 MB: refused before they are read whole, with
/// 413 and a reason (the API server's largest review, an UPDATE of an object at its 3 MiB
/// request limit plus the old object, still fits under the limit).
#[test]
fn ten_megabyte_bodies_are_refused_with_413() {
    let big = "x".repeat(10 * 1024 * 1024);
    let f = fixture();
    let mut obj = f.objects[0].clone();
    obj["metadata"]["annotations"] = json!({ "big": big });
    for path in ENDPOINTS {
        let review = if path == "/convert" {
            conversion_review(&[&obj], "llamastack.io/v1alpha1")
        } else {
            admission_review(&obj, None)
        };
        let (status, body) = post(path, serde_json::to_vec(&review).expect("json"), true);
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!body.is_empty(), "{path}: 413 without a reason");
    }
}

/// The largest review the API server sends: an UPDATE whose object and old object are each
/// at the API server's 3 MiB request-body limit. It must be answered, not refused for size
/// (with failurePolicy Fail a refusal would block every update of such an object).
#[test]
fn the_api_servers_largest_review_is_answered() {
    let f = fixture();
    let mut obj = f.objects[0].clone();
    obj["metadata"]["annotations"] = json!({ "big": "y".repeat(3 * 1024 * 1024 - 4096) });
    let review = admission_review(&obj, Some(&obj));
    let body = serde_json::to_vec(&review).expect("json");
    assert!(body.len() > 6_000_000, "{} bytes", body.len());
    for path in ["/validate", "/mutate"] {
        let (status, answer) = post(path, body.clone(), true);
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let (status, answer) = post(
        "/convert",
        serde_json::to_vec(&conversion_review(&[&obj], "llamastack.io/v1alpha1")).expect("json"),
        true,
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "/convert: {}",
        String::from_utf8_lossy(&answer)
    );
}

/// Nesting 10,000 deep, in the object and as the whole body: a 400 or 422 with a reason, no
/// stack overflow.
#[test]
fn nesting_ten_thousand_deep_is_refused_with_a_reason() {
    let deep = mutate::nested(10_000);
    let f = fixture();
    for path in ENDPOINTS {
        let shallow = if path == "/convert" {
            conversion_review(&[&f.objects[0]], "llamastack.io/v1alpha1")
        } else {
            admission_review(&f.objects[0], None)
        };
        let text = serde_json::to_string(&shallow).expect("json");
        // The object's spec replaced by the deep array, textually (serde_json cannot build it).
        let spec = serde_json::to_string(&f.objects[0]["spec"]).expect("json");
        let in_object = text.replacen(&spec, &deep, 1);
        assert_ne!(in_object, text, "the spec was found in the review");
        for body in [in_object, deep.clone()] {
            let (status, answer) = post(path, body.into_bytes(), true);
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
            assert!(!answer.is_empty(), "{path}: {status} without a reason");
        }
    }
}
