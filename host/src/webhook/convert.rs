//! `POST /convert`: ConversionReview in, ConversionReview out (FR-080..083). The conversion
//! itself is the built-in component's; this only unpacks and packs the review.

use super::Webhooks;
use crate::plugin::{ConvertRefusal, Host, Plugin};
use axum::Json;
use axum::extract::State;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use std::sync::Arc;

pub async fn handle(
    State(hooks): State<Arc<Webhooks>>,
    Json(review): Json<ConversionReview>,
) -> Json<ConversionReview> {
    // wasmtime calls are synchronous: keep them off the async workers.
    let out =
        tokio::task::spawn_blocking(move || review_with(&hooks.host, hooks.builtin(), review))
            .await
            .unwrap_or_else(|e| {
                ConversionResponse::invalid(Status::failure(
                    &format!("the conversion task failed: {e}"),
                    "InternalError",
                ))
                .into_review()
            });
    Json(out)
}

/// Converts every object of the review, or fails the whole review naming the object.
fn review_with(host: &Host, plugin: &Plugin, review: ConversionReview) -> ConversionReview {
    let request = match ConversionRequest::from_review(review) {
        Ok(r) => r,
        Err(_) => {
            return ConversionResponse::invalid(Status::failure(
                "the ConversionReview has no request",
                "BadRequest",
            ))
            .into_review();
        }
    };
    let to = request.desired_api_version.clone();
    let span = tracing::info_span!("convert", uid = %request.uid, to = %to, objects = request.objects.len());
    let _enter = span.enter();
    let mut converted = Vec::with_capacity(request.objects.len());
    for object in &request.objects {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("<unnamed>")
            .to_string();
        let failure = |message: String| {
            tracing::warn!(object = %name, %message, "conversion failed");
            Status::failure(
                &format!("cannot convert {name} to {to}: {message}"),
                "Invalid",
            )
        };
        let result = match plugin.convert(host, object, &to) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(ConvertRefusal::Invalid(errors))) => Err(failure(
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.path, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Ok(Err(ConvertRefusal::Unsupported(why))) => Err(failure(why)),
            Err(e) => Err(failure(e.to_string())),
        };
        match result {
            Ok(out) => converted.push(out),
            Err(status) => {
                return ConversionResponse::for_request(request)
                    .failure(status)
                    .into_review();
            }
        }
    }
    ConversionResponse::for_request(request)
        .success(converted)
        .into_review()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusSummary;
    use serde_json::json;

    fn hooks() -> Webhooks {
        Webhooks::with_builtin(None).expect("built-in plugin")
    }

    fn request(objects: Vec<serde_json::Value>, to: &str) -> ConversionReview {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u-1", "desiredAPIVersion": to, "objects": objects}}))
        .expect("a review")
    }

    #[test]
    fn converts_every_object_and_echoes_the_uid() {
        let hooks = hooks();
        let v1 = json!({"apiVersion": "llamastack.io/v1alpha1", "kind": "LlamaStackDistribution",
            "metadata": {"name": "a"}, "spec": {"server": {"distribution": {"name": "starter"}, "workers": 2}}});
        let out = review_with(
            &hooks.host,
            hooks.builtin(),
            request(vec![v1.clone(), v1], "llamastack.io/v1alpha2"),
        );
        let resp = out.response.expect("a response");
        assert_eq!(resp.uid, "u-1");
        assert_eq!(resp.result.status, Some(StatusSummary::Success));
        assert_eq!(resp.converted_objects.len(), 2);
        assert_eq!(resp.converted_objects[0]["spec"]["workload"]["workers"], 2);
    }

    #[test]
    fn a_bad_object_fails_the_review_with_its_name_not_http_500() {
        let hooks = hooks();
        let bad = json!({"apiVersion": "llamastack.io/v1alpha1", "kind": "Other", "metadata": {"name": "weird"}});
        let resp = review_with(
            &hooks.host,
            hooks.builtin(),
            request(vec![bad], "llamastack.io/v1alpha2"),
        )
        .response
        .expect("a response");
        assert_eq!(resp.result.status, Some(StatusSummary::Failure));
        assert!(
            resp.result
                .message
                .starts_with("cannot convert weird to llamastack.io/v1alpha2: kind:"),
            "{}",
            resp.result.message
        );
        let empty: ConversionReview = serde_json::from_value(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}),
        )
        .expect("review");
        let resp = review_with(&hooks.host, hooks.builtin(), empty)
            .response
            .expect("a response");
        assert_eq!(resp.result.status, Some(StatusSummary::Failure));
    }
}
