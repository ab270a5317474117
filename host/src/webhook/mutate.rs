//! `POST /mutate`: D4's short forms rewritten to the stored form before the API server
//! validates (`llama_stack_config::spec::shorthand`, pure); a single provider object is denied
//! with the list form spelled out. v1alpha1 has no short forms.

use axum::Json;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use llama_stack_config::spec::shorthand;

pub async fn handle(
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    Json(review_mutation(review))
}

/// The mutation for one review: allowed with a JSON patch, allowed as is, or denied.
fn review_mutation(review: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return AdmissionResponse::invalid(e.to_string()).into_review(),
    };
    let span = tracing::info_span!("mutate", uid = %req.uid, name = %req.name, op = ?req.operation);
    let _enter = span.enter();
    let resp = AdmissionResponse::from(&req);
    let Some(obj) = req.object.as_ref() else {
        return resp.into_review();
    };
    if obj.types.as_ref().map(|t| t.api_version.as_str()) != Some("llamastack.io/v1alpha2") {
        return resp.into_review();
    }
    let spec = obj.data.get("spec").cloned().unwrap_or_default();
    match shorthand::typed_form(&spec) {
        Ok(rewrites) if rewrites.is_empty() => resp.into_review(),
        Ok(rewrites) => {
            // A pointer that does not parse must not fall back to the root: deny instead.
            let ops: Result<Vec<json_patch::PatchOperation>, String> = rewrites
                .into_iter()
                .map(|r| {
                    let path = json_patch::jsonptr::PointerBuf::parse(&r.pointer)
                        .map_err(|e| format!("bad rewrite pointer {}: {e}", r.pointer))?;
                    Ok(json_patch::PatchOperation::Replace(
                        json_patch::ReplaceOperation {
                            path,
                            value: r.value,
                        },
                    ))
                })
                .collect();
            let ops = match ops {
                Ok(ops) => ops,
                Err(e) => return AdmissionResponse::from(&req).deny(e).into_review(),
            };
            tracing::info!(rewrites = ops.len(), "short forms rewritten (D4)");
            match resp.with_patch(json_patch::Patch(ops)) {
                Ok(r) => r.into_review(),
                Err(e) => AdmissionResponse::from(&req)
                    .deny(format!("failed to encode the rewrite: {e}"))
                    .into_review(),
            }
        }
        Err(errors) => {
            let message = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            resp.deny(message).into_review()
        }
    }
}
