//! The Ingress `<cr>-ingress` for `networking.expose` (v1alpha1-behavior §3.8, D4), and the
//! URL the status reports for it.

use super::{
    BuildError, COMPONENT_SERVER, Inputs, cr_name, cr_namespace, names, object_meta, port,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};

/// The Ingress, when `networking.expose` is present and not `enabled: false` (D4: an
/// object with `enabled` absent means on). Host: `expose.hostname`, else
/// `<cr>-<namespace>.<ingress domain>` when the operator has a domain, else none (any host,
/// as upstream).
pub fn ingress(inputs: &Inputs) -> Result<Option<Ingress>, BuildError> {
    let cr = inputs.cr;
    let Some(expose) = cr
        .spec
        .networking
        .as_ref()
        .and_then(|n| n.expose.as_ref())
        .filter(|e| e.enabled != Some(false))
    else {
        return Ok(None);
    };
    let name = cr_name(cr)?;
    let host = match (expose.hostname.as_deref(), inputs.ingress_domain) {
        (Some(h), _) if !h.is_empty() => Some(h.to_string()),
        (_, Some(domain)) if !domain.is_empty() => {
            Some(format!("{name}-{}.{domain}", cr_namespace(cr)?))
        }
        _ => None,
    };
    Ok(Some(Ingress {
        metadata: object_meta(cr, names::ingress(name), COMPONENT_SERVER)?,
        spec: Some(IngressSpec {
            rules: Some(vec![IngressRule {
                host,
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: names::service(name),
                                port: Some(ServiceBackendPort {
                                    number: Some(port(cr)),
                                    ..ServiceBackendPort::default()
                                }),
                            }),
                            ..IngressBackend::default()
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }))
}

/// Where clients reach the server through `ingress`: the load balancer's hostname, else its
/// IP, else the rule's host; `https` only when the Ingress terminates TLS.
pub fn route_url(ingress: &Ingress) -> Option<String> {
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let lb = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|i| i.first());
    let spec = ingress.spec.as_ref();
    let host = lb
        .and_then(|i| non_empty(&i.hostname))
        .or_else(|| {
            // An IPv6 address needs brackets in a URL.
            lb.and_then(|i| non_empty(&i.ip)).map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip
                }
            })
        })
        .or_else(|| {
            spec.and_then(|s| s.rules.as_ref())
                .and_then(|r| r.first())
                .and_then(|r| non_empty(&r.host))
        })?;
    let tls = spec
        .and_then(|s| s.tls.as_ref())
        .is_some_and(|t| !t.is_empty());
    Some(format!("{}://{host}", if tls { "https" } else { "http" }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_server_owned, inputs, minimal, with_networking};
    use super::*;
    use k8s_openapi::api::networking::v1::{
        IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus, IngressTLS,
    };
    use serde_json::{Value, json};

    fn build(networking: Value, domain: Option<&str>) -> Option<Ingress> {
        let cr = with_networking(networking);
        ingress(&Inputs {
            ingress_domain: domain,
            ..inputs(&cr)
        })
        .unwrap()
    }

    fn rule(i: &Ingress) -> &IngressRule {
        let rules = i.spec.as_ref().unwrap().rules.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        &rules[0]
    }

    #[test]
    fn presence_follows_tri_state() {
        assert_eq!(ingress(&inputs(&minimal())).unwrap(), None);
        assert_eq!(build(json!({}), Some("apps.example.com")), None);
        assert_eq!(build(json!({"expose": {"enabled": false}}), None), None);
        assert!(build(json!({"expose": {}}), None).is_some());
        assert!(build(json!({"expose": {"enabled": true}}), None).is_some());
    }

    #[test]
    fn shape() {
        let i = build(json!({"port": 9000, "expose": {}}), None).unwrap();
        assert_server_owned(&i.metadata, "demo-ingress");
        let spec = i.spec.as_ref().unwrap();
        assert_eq!(spec.ingress_class_name, None);
        assert_eq!(spec.tls, None);
        assert_eq!(spec.default_backend, None);
        let r = rule(&i);
        assert_eq!(r.host, None);
        let paths = &r.http.as_ref().unwrap().paths;
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].path.as_deref(), Some("/"));
        assert_eq!(paths[0].path_type, "Prefix");
        let svc = paths[0].backend.service.as_ref().unwrap();
        assert_eq!(svc.name, "demo-service");
        assert_eq!(svc.port.as_ref().unwrap().number, Some(9000));
        assert_eq!(svc.port.as_ref().unwrap().name, None);
    }

    #[test]
    fn host_choice() {
        let explicit = build(
            json!({"expose": {"hostname": "llama.example.com"}}),
            Some("apps.example.com"),
        )
        .unwrap();
        assert_eq!(rule(&explicit).host.as_deref(), Some("llama.example.com"));
        let generated = build(json!({"expose": {}}), Some("apps.example.com")).unwrap();
        assert_eq!(
            rule(&generated).host.as_deref(),
            Some("demo-team.apps.example.com")
        );
        let none = build(json!({"expose": {"enabled": true}}), None).unwrap();
        assert_eq!(rule(&none).host, None);
    }

    fn with_status(host: Option<&str>, lb_host: Option<&str>, lb_ip: Option<&str>) -> Ingress {
        let mut i = build(json!({"expose": {}}), None).unwrap();
        if let Some(h) = host {
            i.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = Some(h.into());
        }
        if lb_host.is_some() || lb_ip.is_some() {
            i.status = Some(IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(vec![IngressLoadBalancerIngress {
                        hostname: lb_host.map(Into::into),
                        ip: lb_ip.map(Into::into),
                        ports: None,
                    }]),
                }),
            });
        }
        i
    }

    #[test]
    fn route_url_choices() {
        let i = with_status(
            Some("rule.example.com"),
            Some("lb.example.com"),
            Some("10.0.0.1"),
        );
        assert_eq!(route_url(&i).as_deref(), Some("http://lb.example.com"));
        let i = with_status(Some("rule.example.com"), None, Some("10.0.0.1"));
        assert_eq!(route_url(&i).as_deref(), Some("http://10.0.0.1"));
        let i = with_status(Some("rule.example.com"), Some(""), Some("fd00::1"));
        assert_eq!(route_url(&i).as_deref(), Some("http://[fd00::1]"));
        let i = with_status(Some("rule.example.com"), None, None);
        assert_eq!(route_url(&i).as_deref(), Some("http://rule.example.com"));
        let i = with_status(None, None, None);
        assert_eq!(route_url(&i), None);
    }

    #[test]
    fn route_url_https_with_tls() {
        let mut i = with_status(Some("rule.example.com"), None, None);
        i.spec.as_mut().unwrap().tls = Some(vec![IngressTLS::default()]);
        assert_eq!(route_url(&i).as_deref(), Some("https://rule.example.com"));
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            build(json!({"expose": {}}), Some("d")),
            build(json!({"expose": {}}), Some("d"))
        );
    }
}
