//! JSON merge patches (RFC 7386): what conversion keeps in an annotation is the patch that
//! turns the mapped object back into the original.

use serde_json::{Map, Value as Json};

/// The merge patch that turns `from` into `to`, or None when they are equal. A `null` in
/// `to` cannot be expressed (merge patches delete on null); Kubernetes objects carry none.
pub fn diff(from: &Json, to: &Json) -> Option<Json> {
    match (from, to) {
        (Json::Object(f), Json::Object(t)) => {
            let mut patch = Map::new();
            for (k, tv) in t {
                match f.get(k) {
                    Some(fv) => {
                        if let Some(d) = diff(fv, tv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), tv.clone());
                    }
                }
            }
            for k in f.keys() {
                if !t.contains_key(k) {
                    patch.insert(k.clone(), Json::Null);
                }
            }
            (!patch.is_empty()).then_some(Json::Object(patch))
        }
        _ if from == to => None,
        // An object replacing a non-object: merge patches merge into an empty object.
        (_, Json::Object(_)) => {
            diff(&Json::Object(Map::new()), to).or(Some(Json::Object(Map::new())))
        }
        _ => Some(to.clone()),
    }
}

/// Applies a merge patch in place.
pub fn apply(target: &mut Json, patch: &Json) {
    let Json::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Json::Object(Map::new());
    }
    let Json::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            apply(t.entry(k.clone()).or_insert(Json::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applying_the_diff_gives_the_target() {
        let pairs = [
            (
                json!({"a": 1, "b": {"c": 2, "d": [1]}}),
                json!({"a": 1, "b": {"c": 3}, "e": "x"}),
            ),
            (json!({"a": {"b": 1}}), json!({"a": 5})),
            (json!({"a": 5}), json!({"a": {"b": 1}})),
            (json!({"a": 5}), json!({"a": {}})),
            (json!({}), json!({})),
            (json!([1, 2]), json!({"x": [1]})),
        ];
        for (from, to) in pairs {
            let mut got = from.clone();
            if let Some(p) = diff(&from, &to) {
                apply(&mut got, &p);
            }
            assert_eq!(got, to, "from {from}");
        }
        assert_eq!(diff(&json!({"a": [1]}), &json!({"a": [1]})), None);
    }
}
