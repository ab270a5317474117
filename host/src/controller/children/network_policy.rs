//! The NetworkPolicy `<cr>-network-policy` (v1alpha1-behavior §3.8), behind the operator's
//! `enableNetworkPolicy` flag. The OpenShift `policy-group: ingress` peer is left out.

use super::{
    BuildError, COMPONENT_SERVER, Inputs, cr_name, names, object_meta, port, selector_labels,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Namespace label every namespace carries with its own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The policy, when the feature flag is on: only the server port, and only from this
/// namespace, the operator's, and the namespaces `networking.allowedFrom` names or selects
/// (`"*"`: every namespace).
pub fn network_policy(inputs: &Inputs) -> Result<Option<NetworkPolicy>, BuildError> {
    if !inputs.network_policy_enabled {
        return Ok(None);
    }
    let cr = inputs.cr;
    let name = cr_name(cr)?;
    Ok(Some(NetworkPolicy {
        metadata: object_meta(cr, names::network_policy(name), COMPONENT_SERVER)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(name)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                ports: Some(vec![NetworkPolicyPort {
                    protocol: Some("TCP".into()),
                    port: Some(IntOrString::Int(port(cr))),
                    ..NetworkPolicyPort::default()
                }]),
                from: Some(peers(inputs)),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }))
}

fn namespace_peer(selector: LabelSelector) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(selector),
        ..NetworkPolicyPeer::default()
    }
}

fn peers(inputs: &Inputs) -> Vec<NetworkPolicyPeer> {
    let allowed = inputs
        .cr
        .spec
        .networking
        .as_ref()
        .and_then(|n| n.allowed_from.as_ref());
    let namespaces = allowed
        .and_then(|a| a.namespaces.as_deref())
        .unwrap_or_default();
    if namespaces.iter().any(|n| n == "*") {
        // An empty namespace selector matches every namespace.
        return vec![namespace_peer(LabelSelector::default())];
    }
    // A peer with only a pod selector means pods of the policy's own namespace.
    let mut peers = vec![NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    }];
    let mut named: Vec<&str> = Vec::new();
    for ns in
        std::iter::once(inputs.operator_namespace).chain(namespaces.iter().map(String::as_str))
    {
        // One peer per namespace, even if the operator's is listed again.
        if ns.is_empty() || named.contains(&ns) {
            continue;
        }
        named.push(ns);
        peers.push(namespace_peer(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                ns.to_string(),
            )])),
            ..LabelSelector::default()
        }));
    }
    let mut keys: Vec<&str> = Vec::new();
    for key in allowed
        .and_then(|a| a.labels.as_deref())
        .unwrap_or_default()
    {
        if key.is_empty() || keys.contains(&key.as_str()) {
            continue;
        }
        keys.push(key);
        // Entries are label keys (upstream docs drift, quirk 18): any value matches.
        peers.push(namespace_peer(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.clone(),
                operator: "Exists".into(),
                values: None,
            }]),
            ..LabelSelector::default()
        }));
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        NAME, OPERATOR_NS, assert_server_owned, inputs, minimal, with_networking,
    };
    use super::*;
    use crate::api::v1alpha2::LlamaStackDistribution;
    use serde_json::json;

    fn enabled(cr: &LlamaStackDistribution) -> NetworkPolicy {
        network_policy(&Inputs {
            network_policy_enabled: true,
            ..inputs(cr)
        })
        .unwrap()
        .unwrap()
    }

    fn rule(np: &NetworkPolicy) -> &NetworkPolicyIngressRule {
        let rules = np.spec.as_ref().unwrap().ingress.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        &rules[0]
    }

    fn ns_peer(ns: &str) -> NetworkPolicyPeer {
        namespace_peer(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                ns.to_string(),
            )])),
            ..LabelSelector::default()
        })
    }

    fn same_namespace() -> NetworkPolicyPeer {
        NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        }
    }

    #[test]
    fn off_without_flag() {
        let cr = with_networking(json!({"allowedFrom": {"namespaces": ["a"]}}));
        assert_eq!(network_policy(&inputs(&cr)).unwrap(), None);
    }

    #[test]
    fn default_peers() {
        let cr = minimal();
        let np = enabled(&cr);
        assert_server_owned(&np.metadata, "demo-network-policy");
        let spec = np.spec.as_ref().unwrap();
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
        assert_eq!(
            spec.pod_selector.as_ref().unwrap().match_labels,
            Some(selector_labels(NAME))
        );
        let r = rule(&np);
        assert_eq!(
            r.ports,
            Some(vec![NetworkPolicyPort {
                protocol: Some("TCP".into()),
                port: Some(IntOrString::Int(8321)),
                end_port: None,
            }])
        );
        assert_eq!(r.from, Some(vec![same_namespace(), ns_peer(OPERATOR_NS)]));
    }

    #[test]
    fn listed_namespaces_and_label_keys() {
        let cr = with_networking(json!({"port": 9000, "allowedFrom": {
            "namespaces": ["frontend", OPERATOR_NS, "frontend", "batch"],
            "labels": ["team", "env", "team"]
        }}));
        let np = enabled(&cr);
        let r = rule(&np);
        assert_eq!(
            r.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(9000))
        );
        let exists = |key: &str| {
            namespace_peer(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: key.into(),
                    operator: "Exists".into(),
                    values: None,
                }]),
                ..LabelSelector::default()
            })
        };
        assert_eq!(
            r.from,
            Some(vec![
                same_namespace(),
                ns_peer(OPERATOR_NS),
                ns_peer("frontend"),
                ns_peer("batch"),
                exists("team"),
                exists("env"),
            ])
        );
    }

    #[test]
    fn wildcard_allows_every_namespace_only() {
        let cr = with_networking(json!({"allowedFrom": {
            "namespaces": ["frontend", "*"], "labels": ["team"]
        }}));
        let np = enabled(&cr);
        assert_eq!(
            rule(&np).from,
            Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector::default()),
                ..NetworkPolicyPeer::default()
            }])
        );
        // `namespaceSelector: {}` must serialize as an empty object, not vanish.
        let json = serde_json::to_value(&np).unwrap();
        assert_eq!(
            json["spec"]["ingress"][0]["from"],
            json!([{"namespaceSelector": {}}])
        );
    }

    #[test]
    fn no_openshift_policy_group_peer() {
        let cr = with_networking(json!({}));
        let json = serde_json::to_string(&enabled(&cr)).unwrap();
        assert!(!json.contains("policy-group"));
    }

    #[test]
    fn deterministic() {
        let cr =
            with_networking(json!({"allowedFrom": {"namespaces": ["b", "a"], "labels": ["x"]}}));
        assert_eq!(enabled(&cr), enabled(&cr));
    }
}
