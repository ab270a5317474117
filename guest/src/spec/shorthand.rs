//! D4 for the mutating webhook: the short forms users write, rewritten to the typed form the
//! CRD stores (`expose: true|false` -> `{enabled: ..}`, a bare model string -> `{name: ..}`),
//! and a single provider object refused with the list form spelled out (by the time a webhook
//! sees it, the API server's pruning has emptied it, so it cannot be rewritten).

use super::ProviderApi;
use crate::error::{FieldError, Reason};
use serde_json::{Value as Json, json};

/// One replacement at a JSON pointer into the object (`/spec/...`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub pointer: String,
    pub value: Json,
}

/// The rewrites that turn `spec`'s short forms into the stored form, or why it cannot be.
pub fn typed_form(spec: &Json) -> Result<Vec<Rewrite>, Vec<FieldError>> {
    let mut out = Vec::new();
    if let Some(Json::Bool(on)) = spec.pointer("/networking/expose") {
        out.push(Rewrite {
            pointer: "/spec/networking/expose".into(),
            value: json!({"enabled": on}),
        });
    }
    if let Some(Json::Array(models)) = spec.pointer("/resources/models") {
        for (i, m) in models.iter().enumerate() {
            if let Json::String(name) = m {
                out.push(Rewrite {
                    pointer: format!("/spec/resources/models/{i}"),
                    value: json!({"name": name}),
                });
            }
        }
    }
    let errors: Vec<FieldError> = ProviderApi::ALL
        .iter()
        .filter(|api| {
            spec.get("providers")
                .and_then(|p| p.get(api.field()))
                .is_some_and(Json::is_object)
        })
        .map(|api| {
            let f = api.field();
            FieldError {
                path: format!("spec.providers.{f}"),
                reason: Reason::Invalid,
                message: format!(
                    "spec.providers.{f} must be a list, also for one provider: write \
                     `{f}: [{{provider: ..., endpoint: ...}}]` (in block YAML, start the provider with \"- \")"
                ),
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_become_typed_and_typed_forms_stay() {
        let spec = json!({"networking": {"expose": true}, "resources": {"models": ["a", {"name": "b"}, "c"]}});
        let r = typed_form(&spec).expect("rewrites");
        assert_eq!(
            r,
            vec![
                Rewrite {
                    pointer: "/spec/networking/expose".into(),
                    value: json!({"enabled": true})
                },
                Rewrite {
                    pointer: "/spec/resources/models/0".into(),
                    value: json!({"name": "a"})
                },
                Rewrite {
                    pointer: "/spec/resources/models/2".into(),
                    value: json!({"name": "c"})
                },
            ]
        );
        let off = typed_form(&json!({"networking": {"expose": false}})).expect("rewrites");
        assert_eq!(off[0].value, json!({"enabled": false}));
        let typed = json!({"networking": {"expose": {}}, "resources": {"models": [{"name": "x"}]},
                           "providers": {"inference": [{"provider": "vllm"}]}});
        assert_eq!(typed_form(&typed).expect("nothing to do"), vec![]);
    }

    #[test]
    fn a_single_provider_object_is_refused_with_the_list_form() {
        let errs =
            typed_form(&json!({"providers": {"inference": {}, "vectorIo": {"provider": "faiss"}}}))
                .expect_err("refused");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.providers.inference", "spec.providers.vectorIo"]
        );
        assert!(
            errs[0]
                .message
                .contains("`inference: [{provider: ..., endpoint: ...}]`")
        );
    }
}
