use super::*;
use serde_json::json;

fn v1(name: &str, spec: Json) -> Json {
    json!({"apiVersion": "llamastack.io/v1alpha1", "kind": "LlamaStackDistribution",
           "metadata": {"name": name, "namespace": "team-a", "labels": {"app": "x"}}, "spec": spec})
}

/// The v1alpha1 shapes of the CRD cluster test (every field of the reference).
fn v1_samples() -> Vec<Json> {
    vec![
        v1(
            "minimal",
            json!({"server": {"distribution": {"name": "starter"}}}),
        ),
        v1(
            "starter-e2e",
            json!({"replicas": 1, "server": {
            "distribution": {"name": "starter"},
            "containerSpec": {"name": "llama-stack", "port": 8321, "resources": {"requests": {"cpu": "1"}},
                              "env": [{"name": "OLLAMA_URL", "value": "http://ollama:11434"}]},
            "workers": 2, "podDisruptionBudget": {"maxUnavailable": 1},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}],
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 75, "targetMemoryUtilizationPercentage": 70},
            "storage": {"size": "20Gi", "mountPath": "/home/lls/.lls"}}}),
        ),
        v1(
            "custom-image",
            json!({"replicas": 2, "server": {
            "distribution": {"image": "quay.io/acme/llama-stack:0.7.3"},
            "containerSpec": {"name": "server", "command": ["/bin/sh", "-c"], "args": ["exec llama stack run"]},
            "podOverrides": {"serviceAccountName": "custom-sa", "terminationGracePeriodSeconds": 0,
                             "volumes": [{"name": "cache", "emptyDir": {}}], "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
            "podDisruptionBudget": {"minAvailable": "50%"}, "storage": {},
            "userConfig": {"configMapName": "llama-config", "configMapNamespace": "other"},
            "tlsConfig": {"caBundle": {"configMapName": "custom-ca-bundle", "configMapNamespace": "certs", "configMapKeys": ["ca.crt"]}}},
            "network": {"exposeRoute": true, "allowedFrom": {"namespaces": ["*"], "labels": ["team"]}}}),
        ),
        v1(
            "replicas-zero",
            json!({"replicas": 0, "server": {"distribution": {"name": "remote-vllm"}}, "network": {"exposeRoute": false}}),
        ),
    ]
}

fn full_v2() -> Json {
    json!({"apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
        "metadata": {"name": "demo", "namespace": "team-a", "annotations": {"keep": "me"}},
        "spec": {
            "distribution": {"name": "starter"},
            "providers": {"inference": [{"id": "a", "provider": "vllm", "endpoint": "http://a:8000/v1",
                          "apiKey": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            "resources": {"models": [{"name": "m"}], "tools": ["websearch"]},
            "storage": {"sql": {"type": "postgres", "connectionString": {"secretKeyRef": {"name": "pg", "key": "dsn"}}}},
            "disabled": ["eval"],
            "networking": {"port": 8443, "tls": {"enabled": true, "secretName": "tls", "caBundle": {"configMapName": "ca"}},
                           "expose": {"hostname": "llama.example.com"}, "allowedFrom": {"namespaces": ["apps"]}},
            "workload": {"replicas": 3, "workers": 2, "storage": {"size": "5Gi"},
                         "overrides": {"serviceAccountName": "sa", "env": [{"name": "A", "value": "1"}]}},
            "externalProviders": {"inference": [{"providerId": "ext", "image": "i:1"}]}},
        "status": {"phase": "Ready", "availableReplicas": 3, "observedGeneration": 4,
                   "configGeneration": {"configMapName": "demo-config-0123abcd", "providerCount": 5},
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                   "message": "3/3 replicas available with current config", "lastTransitionTime": "2026-11-27T00:00:00Z"}]}})
}

fn annotation(obj: &Json, key: &str) -> Option<Json> {
    obj["metadata"]["annotations"][key]
        .as_str()
        .map(|s| serde_json::from_str(s).expect("annotation JSON"))
}

#[test]
fn v1alpha1_samples_round_trip_through_the_hub() {
    for sample in v1_samples() {
        let hub = convert(&sample, Version::V1alpha2).expect("converts up");
        assert_eq!(hub["apiVersion"], "llamastack.io/v1alpha2");
        let back = convert(&hub, Version::V1alpha1).expect("converts down");
        assert_eq!(back, sample, "{}", sample["metadata"]["name"]);
    }
}

#[test]
fn fr083_table_moves_fields_to_their_v1alpha2_homes() {
    let samples = v1_samples();
    let hub = convert(&samples[2], Version::V1alpha2).expect("up");
    let s = &hub["spec"];
    assert_eq!(
        s["distribution"],
        json!({"image": "quay.io/acme/llama-stack:0.7.3"})
    );
    assert_eq!(s["workload"]["replicas"], 2);
    assert_eq!(
        s["workload"]["overrides"]["command"],
        json!(["/bin/sh", "-c"])
    );
    assert_eq!(
        s["workload"]["overrides"]["serviceAccountName"],
        "custom-sa"
    );
    assert_eq!(
        s["workload"]["overrides"]["terminationGracePeriodSeconds"],
        0
    );
    assert_eq!(
        s["workload"]["podDisruptionBudget"],
        json!({"minAvailable": "50%"})
    );
    assert_eq!(s["workload"]["storage"], json!({}));
    assert_eq!(
        s["overrideConfig"],
        json!({"configMapName": "llama-config"})
    );
    assert_eq!(
        s["networking"]["tls"]["caBundle"]["configMapName"],
        "custom-ca-bundle"
    );
    assert_eq!(s["networking"]["expose"], json!({"enabled": true}));
    assert_eq!(s["networking"]["allowedFrom"]["labels"], json!(["team"]));
    assert!(s.get("server").is_none() && s.get("network").is_none());
    // No v1alpha2 home: kept in the annotation, nothing else.
    assert_eq!(
        annotation(&hub, V1ALPHA1_FIELDS),
        Some(
            json!({"spec": {"server": {"containerSpec": {"name": "server"}, "userConfig": {"configMapNamespace": "other"}}}})
        )
    );
    let e2e = convert(&samples[1], Version::V1alpha2).expect("up");
    assert_eq!(e2e["spec"]["networking"]["port"], 8321);
    assert_eq!(e2e["spec"]["workload"]["autoscaling"]["maxReplicas"], 5);
    assert_eq!(
        e2e["spec"]["workload"]["overrides"]["env"][0]["name"],
        "OLLAMA_URL"
    );
    // `exposeRoute: false` is the same as no exposure in v1alpha2; the explicit false is kept.
    let off = convert(&samples[3], Version::V1alpha2).expect("up");
    assert!(off["spec"].get("networking").is_none());
    assert_eq!(
        annotation(&off, V1ALPHA1_FIELDS),
        Some(json!({"spec": {"network": {"exposeRoute": false}}}))
    );
    // A minimal object needs no annotation at all.
    let min = convert(&samples[0], Version::V1alpha2).expect("up");
    assert!(min["metadata"].get("annotations").is_none(), "{min}");
}

#[test]
fn v1alpha2_round_trips_through_v1alpha1_with_its_new_fields_parked() {
    let v2 = full_v2();
    let old = convert(&v2, Version::V1alpha1).expect("down");
    assert_eq!(old["apiVersion"], "llamastack.io/v1alpha1");
    assert_eq!(old["spec"]["replicas"], 3);
    assert_eq!(old["spec"]["server"]["distribution"]["name"], "starter");
    assert_eq!(old["spec"]["server"]["containerSpec"]["port"], 8443);
    assert_eq!(old["spec"]["network"]["exposeRoute"], true);
    assert_eq!(old["status"]["phase"], "Ready");
    assert_eq!(old["metadata"]["annotations"]["keep"], "me");
    let parked = annotation(&old, V1ALPHA2_FIELDS).expect("v1alpha2-only fields are parked");
    for key in [
        "providers",
        "resources",
        "storage",
        "disabled",
        "externalProviders",
    ] {
        assert_eq!(parked["spec"][key], v2["spec"][key], "{key}");
    }
    assert_eq!(
        parked["status"]["configGeneration"],
        v2["status"]["configGeneration"]
    );
    assert_eq!(convert(&old, Version::V1alpha2).expect("up"), v2);
}

#[test]
fn an_edit_in_v1alpha1_survives_and_the_parked_fields_still_return() {
    let mut old = convert(&full_v2(), Version::V1alpha1).expect("down");
    old["spec"]["replicas"] = json!(7);
    let v2 = convert(&old, Version::V1alpha2).expect("up");
    assert_eq!(v2["spec"]["workload"]["replicas"], 7);
    assert_eq!(v2["spec"]["providers"], full_v2()["spec"]["providers"]);
}

#[test]
fn same_version_is_identity_and_bad_envelopes_are_field_errors() {
    let v2 = full_v2();
    assert_eq!(convert(&v2, Version::V1alpha2).expect("same"), v2);
    let paths = |r: Result<Json, Vec<FieldError>>| -> Vec<String> {
        r.expect_err("must fail")
            .into_iter()
            .map(|e| e.path)
            .collect()
    };
    assert_eq!(paths(convert(&json!([1]), Version::V1alpha1)), ["object"]);
    assert_eq!(
        paths(convert(
            &json!({"kind": "Pod", "apiVersion": "v1"}),
            Version::V1alpha1
        )),
        ["kind"]
    );
    assert_eq!(
        paths(convert(
            &json!({"kind": "LlamaStackDistribution", "apiVersion": "llamastack.io/v1beta1"}),
            Version::V1alpha1
        )),
        ["apiVersion"]
    );
    let mut broken = convert(&v2, Version::V1alpha1).expect("down");
    broken["metadata"]["annotations"][V1ALPHA2_FIELDS] = json!("{not json");
    let errs = convert(&broken, Version::V1alpha2).expect_err("bad annotation");
    assert!(
        errs[0].path.contains(V1ALPHA2_FIELDS) && errs[0].message.contains("remove the annotation")
    );
    assert_eq!(
        Version::parse("llamastack.io/v1alpha1"),
        Some(Version::V1alpha1)
    );
    assert_eq!(Version::V1alpha2.api_version(), "llamastack.io/v1alpha2");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Json::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            "[a-z]{0,6}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("server".to_string()),
                        Just("distribution".to_string()),
                        Just("replicas".to_string()),
                        Just("workload".to_string()),
                        Just("network".to_string()),
                        Just("networking".to_string()),
                        Just("expose".to_string()),
                        Just("exposeRoute".to_string()),
                        Just("containerSpec".to_string()),
                        Just("enabled".to_string()),
                        "[a-z]{1,5}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object(version: &str) -> impl Strategy<Value = Json> {
        let version = version.to_string();
        (json_value(), json_value(), prop::option::of(json_value())).prop_map(move |(spec, status, extra)| {
            let mut o = json!({"apiVersion": format!("llamastack.io/{version}"), "kind": "LlamaStackDistribution",
                               "metadata": {"name": "p"}, "spec": spec, "status": status});
            if let Some(e) = extra {
                o["metadata"]["labels"] = json!({"x": e.to_string()});
            }
            o
        })
    }

    /// Nulls cannot travel in a merge patch; Kubernetes objects carry none.
    fn no_nulls(v: &Json) -> bool {
        match v {
            Json::Null => false,
            Json::Array(a) => a.iter().all(no_nulls),
            Json::Object(m) => m.values().all(no_nulls),
            _ => true,
        }
    }

    proptest! {
        #[test]
        fn any_v1alpha1_object_round_trips(o in object("v1alpha1")) {
            prop_assume!(no_nulls(&o));
            let hub = convert(&o, Version::V1alpha2).expect("up");
            prop_assert_eq!(convert(&hub, Version::V1alpha1).expect("down"), o);
        }

        #[test]
        fn any_v1alpha2_object_round_trips(o in object("v1alpha2")) {
            prop_assume!(no_nulls(&o));
            let old = convert(&o, Version::V1alpha1).expect("down");
            prop_assert_eq!(convert(&old, Version::V1alpha2).expect("up"), o);
        }
    }
}
