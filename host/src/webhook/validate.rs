//! `POST /validate` (FR-076..079d): the engine's checks through the built-in component (what
//! CEL cannot express: FR-079d, D7 ids and env names, model -> provider references, ...) plus
//! the lookups only the host can make: referenced Secrets and keys, the overrideConfig and
//! caBundle ConfigMaps, all in the object's namespace (D14). Every problem is reported at
//! once, as a Status with field causes (FR-077); FR-079c is a warning.

use super::Webhooks;
use crate::api::v1alpha2::references::secret_key_refs;
use crate::plugin::ConvertRefusal;
use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status};
use llama_stack_config::{BaseConfigInput, BaseSource, FieldError, GenerateRequest, Reason};
use serde_json::Value;
use std::sync::Arc;

pub async fn handle(
    State(hooks): State<Arc<Webhooks>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    let span =
        tracing::info_span!("validate", uid = %req.uid, name = %req.name, ns = ?req.namespace);
    let _enter = span.enter();
    let resp = AdmissionResponse::from(&req);
    let Some(obj) = req.object.as_ref().filter(|_| needs_validation(&req)) else {
        return Json(resp.into_review());
    };
    let ns = req.namespace.clone().unwrap_or_default();
    let object = serde_json::to_value(obj).unwrap_or_default();
    let (errors, warnings) = check(hooks, &ns, object).await;
    let mut resp = resp;
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    if errors.is_empty() {
        tracing::info!(allowed = true, "validated");
        return Json(resp.into_review());
    }
    tracing::info!(allowed = false, problems = errors.len(), "validated");
    Json(deny(resp, &errors).into_review())
}

/// Creates, and updates that change the spec of an object not being deleted. A metadata-only
/// update (labels, a finalizer's removal) must not be blocked because, say, a Secret was
/// deleted since the spec was accepted: the controller reports that as a condition.
fn needs_validation(req: &AdmissionRequest<DynamicObject>) -> bool {
    let Some(obj) = req.object.as_ref() else {
        return false;
    };
    match req.operation {
        Operation::Create => true,
        Operation::Update => {
            obj.metadata.deletion_timestamp.is_none()
                && req.old_object.as_ref().map(|o| o.data.get("spec")) != Some(obj.data.get("spec"))
        }
        _ => false,
    }
}

/// A denial carrying every problem as a field cause.
fn deny(mut resp: AdmissionResponse, errors: &[FieldError]) -> AdmissionResponse {
    let message = errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    resp.allowed = false;
    resp.result = Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message,
        reason: "Invalid".into(),
        metadata: None,
        details: Some(StatusDetails {
            causes: errors
                .iter()
                .map(|e| StatusCause {
                    reason: cause_reason(e.reason).into(),
                    message: e.message.clone(),
                    field: e.path.clone(),
                })
                .collect(),
            name: String::new(),
            group: "llamastack.io".into(),
            kind: "LlamaStackDistribution".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        }),
    };
    resp
}

/// Kubernetes `field.ErrorType` names.
fn cause_reason(r: Reason) -> &'static str {
    match r {
        Reason::Required => "FieldValueRequired",
        Reason::NotFound | Reason::UnknownDistribution => "FieldValueNotFound",
        Reason::Duplicate => "FieldValueDuplicate",
        Reason::NotSupported => "FieldValueNotSupported",
        Reason::Conflict => "FieldValueForbidden",
        _ => "FieldValueInvalid",
    }
}

/// Errors and warnings for one object.
pub async fn check(
    hooks: Arc<Webhooks>,
    ns: &str,
    mut object: Value,
) -> (Vec<FieldError>, Vec<String>) {
    if object["apiVersion"] == "llamastack.io/v1alpha1" {
        let h = hooks.clone();
        let converted =
            tokio::task::spawn_blocking(move || h.builtin().convert(&h.host, &object, "v1alpha2"))
                .await;
        object = match converted {
            Ok(Ok(Ok(o))) => o,
            Ok(Ok(Err(ConvertRefusal::Invalid(errors)))) => return (errors, Vec::new()),
            other => {
                return (
                    vec![internal(format!("conversion failed: {other:?}"))],
                    Vec::new(),
                );
            }
        };
    }
    let mut req = match llama_stack_config::resource::request_from_object(object) {
        Ok(r) => r,
        Err(message) => {
            return (
                vec![FieldError {
                    path: "spec".into(),
                    reason: Reason::Invalid,
                    message,
                }],
                Vec::new(),
            );
        }
    };
    let warnings = fr079c(&req.spec);
    let mut errors = Vec::new();
    let mut override_missing = false;
    if let Some(client) = &hooks.client {
        lookups(client, ns, &mut req, &mut errors, &mut override_missing).await;
    }
    let h = hooks.clone();
    let engine =
        tokio::task::spawn_blocking(move || h.plugins.for_request(&req).validate(&h.host, &req))
            .await;
    match engine {
        Ok(Ok(found)) => errors.extend(found.into_iter().filter(|e| {
            // Reported by the lookup already, with the ConfigMap's name.
            !(override_missing && e.path == "spec.overrideConfig.configMapName")
        })),
        Ok(Err(e)) => errors.push(internal(e.to_string())),
        Err(e) => errors.push(internal(e.to_string())),
    }
    (errors, warnings)
}

fn internal(message: String) -> FieldError {
    FieldError {
        path: "spec".into(),
        reason: Reason::Invalid,
        message: format!("the operator could not check this object: {message}"),
    }
}

/// FR-079c: settings a sqlite key-value store ignores.
fn fr079c(spec: &Value) -> Vec<String> {
    let kv = &spec["storage"]["kv"];
    let sqlite = kv.is_object() && kv.get("type").is_none_or(|t| t == "sqlite");
    ["endpoint", "password"]
        .iter()
        .filter(|f| sqlite && kv.get(**f).is_some())
        .map(|f| format!("spec.storage.kv.{f} is ignored: storage.kv.type is sqlite (set type: redis to use it)"))
        .collect()
}

async fn lookups(
    client: &kube::Client,
    ns: &str,
    req: &mut GenerateRequest,
    errors: &mut Vec<FieldError>,
    override_missing: &mut bool,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let not_found = |path: String, message: String| FieldError {
        path,
        reason: Reason::NotFound,
        message,
    };
    for (path, name, key) in secret_key_refs(&req.spec) {
        match secrets.get_opt(&name).await {
            Ok(Some(s)) => {
                let has = s.data.as_ref().is_some_and(|d| d.contains_key(&key))
                    || s.string_data.as_ref().is_some_and(|d| d.contains_key(&key));
                if !has {
                    let key_path = path.trim_end_matches(".name").to_string() + ".key";
                    errors.push(not_found(key_path, format!("Key \"{key}\" not found in Secret \"{name}\" in namespace \"{ns}\"")));
                }
            }
            Ok(None) => errors.push(not_found(path, format!("Secret \"{name}\" not found in namespace \"{ns}\": create it before the LlamaStackDistribution"))),
            Err(e) => errors.push(internal(format!("reading Secret {name}: {e}"))),
        }
    }
    for (path, v) in [
        (
            "spec.storage.sql.secretRef.name",
            &req.spec["storage"]["sql"]["secretRef"]["name"],
        ),
        (
            "spec.networking.tls.secretName",
            &req.spec["networking"]["tls"]["secretName"],
        ),
    ] {
        if let Some(name) = v.as_str() {
            match secrets.get_opt(name).await {
                Ok(Some(_)) => {}
                Ok(None) => errors.push(not_found(
                    path.into(),
                    format!("Secret \"{name}\" not found in namespace \"{ns}\""),
                )),
                Err(e) => errors.push(internal(format!("reading Secret {name}: {e}"))),
            }
        }
    }
    if let Some(name) = req.spec["overrideConfig"]["configMapName"]
        .as_str()
        .map(str::to_string)
    {
        let path = "spec.overrideConfig.configMapName".to_string();
        match configmaps.get_opt(&name).await {
            Ok(Some(cm)) => match cm.data.as_ref().and_then(|d| d.get("config.yaml")) {
                Some(yaml) => {
                    req.base_config = Some(BaseConfigInput {
                        yaml: yaml.clone(),
                        source: BaseSource::OverrideConfig,
                    });
                }
                None => {
                    *override_missing = true;
                    errors.push(not_found(
                        path,
                        format!("ConfigMap \"{name}\" has no config.yaml key"),
                    ));
                }
            },
            Ok(None) => {
                *override_missing = true;
                errors.push(not_found(
                    path,
                    format!("ConfigMap \"{name}\" not found in namespace \"{ns}\""),
                ));
            }
            Err(e) => errors.push(internal(format!("reading ConfigMap {name}: {e}"))),
        }
    }
    let ca = &req.spec["networking"]["tls"]["caBundle"];
    if let Some(name) = ca["configMapName"].as_str() {
        match ca["configMapNamespace"].as_str() {
            Some(other) if other != ns => errors.push(FieldError {
                path: "spec.networking.tls.caBundle.configMapNamespace".into(),
                reason: Reason::Invalid,
                message: format!("the CA bundle ConfigMap must be in the resource's namespace \"{ns}\", not \"{other}\" (D14): copy it here"),
            }),
            _ => match configmaps.get_opt(name).await {
                Ok(Some(cm)) => {
                    let keys: Vec<String> = ca["configMapKeys"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                        .unwrap_or_else(|| vec!["ca-bundle.crt".into()]);
                    for key in keys {
                        if !cm.data.as_ref().is_some_and(|d| d.contains_key(&key)) {
                            errors.push(not_found(
                                "spec.networking.tls.caBundle.configMapKeys".into(),
                                format!("Key \"{key}\" not found in ConfigMap \"{name}\" in namespace \"{ns}\""),
                            ));
                        }
                    }
                }
                Ok(None) => errors.push(not_found(
                    "spec.networking.tls.caBundle.configMapName".into(),
                    format!("ConfigMap \"{name}\" not found in namespace \"{ns}\""),
                )),
                Err(e) => errors.push(internal(format!("reading ConfigMap {name}: {e}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(
        op: &str,
        old_spec: Option<serde_json::Value>,
        spec: serde_json::Value,
        deleting: bool,
    ) -> AdmissionRequest<DynamicObject> {
        let obj = |spec: serde_json::Value| {
            let mut o = json!({"apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
                               "metadata": {"name": "x", "namespace": "n"}, "spec": spec});
            if deleting {
                o["metadata"]["deletionTimestamp"] = json!("2026-11-27T00:00:00Z");
            }
            o
        };
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "llamastack.io", "version": "v1alpha2", "kind": "LlamaStackDistribution"},
                        "resource": {"group": "llamastack.io", "version": "v1alpha2", "resource": "llamastackdistributions"},
                        "name": "x", "namespace": "n", "operation": op, "userInfo": {},
                        "object": obj(spec), "oldObject": old_spec.map(obj), "dryRun": false}}))
        .expect("a review");
        review.try_into().expect("a request")
    }

    #[test]
    fn unchanged_specs_and_deletions_are_not_revalidated() {
        let spec = json!({"distribution": {"name": "starter"}});
        let other = json!({"distribution": {"name": "remote-vllm"}});
        assert!(needs_validation(&request(
            "CREATE",
            None,
            spec.clone(),
            false
        )));
        assert!(needs_validation(&request(
            "UPDATE",
            Some(other.clone()),
            spec.clone(),
            false
        )));
        assert!(
            !needs_validation(&request("UPDATE", Some(spec.clone()), spec.clone(), false)),
            "metadata-only update"
        );
        assert!(
            !needs_validation(&request("UPDATE", Some(other), spec, true)),
            "being deleted"
        );
    }

    #[test]
    fn fr079c_warns_about_what_sqlite_ignores() {
        let w = fr079c(
            &json!({"storage": {"kv": {"endpoint": "redis://r", "password": {"secretKeyRef": {"name": "a", "key": "b"}}}}}),
        );
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("spec.storage.kv.endpoint is ignored"));
        assert!(
            fr079c(&json!({"storage": {"kv": {"type": "redis", "endpoint": "redis://r"}}}))
                .is_empty()
        );
        assert!(fr079c(&json!({})).is_empty());
    }

    #[test]
    fn every_secret_reference_is_found_with_its_path() {
        let refs = secret_key_refs(&json!({
            "providers": {"inference": [{"provider": "vllm", "apiKey": {"secretKeyRef": {"name": "a", "key": "k"}},
                                         "secretRefs": {"password": {"secretKeyRef": {"name": "b", "key": "p"}}}}]},
            "storage": {"kv": {"password": {"secretKeyRef": {"name": "c", "key": "pw"}}},
                        "sql": {"connectionString": {"secretKeyRef": {"name": "d", "key": "dsn"}}}}}));
        let paths: Vec<&str> = refs.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.providers.inference[0].apiKey.secretKeyRef.name",
                "spec.providers.inference[0].secretRefs.password.secretKeyRef.name",
                "spec.storage.kv.password.secretKeyRef.name",
                "spec.storage.sql.connectionString.secretKeyRef.name",
            ]
        );
    }
}
