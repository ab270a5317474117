//! The Service `<cr>-service` (v1alpha1-behavior §3.6). Always created: upstream made it
//! depend on a port or env being set (quirk 11), which left default CRs unreachable.

use super::{
    BuildError, COMPONENT_SERVER, Inputs, PORT_NAME, cr_name, names, object_meta, port,
    selector_labels,
};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The ClusterIP Service in front of the server pods.
pub fn service(inputs: &Inputs) -> Result<Service, BuildError> {
    let cr = inputs.cr;
    let name = cr_name(cr)?;
    let port = port(cr);
    Ok(Service {
        metadata: object_meta(cr, names::service(name), COMPONENT_SERVER)?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                protocol: Some("TCP".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NAME, assert_server_owned, inputs, minimal, with_networking};
    use super::*;
    use serde_json::json;

    #[test]
    fn default_service() {
        let cr = minimal();
        let s = service(&inputs(&cr)).unwrap();
        assert_server_owned(&s.metadata, "demo-service");
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector, Some(selector_labels(NAME)));
        let ports = spec.ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(ports[0].port, 8321);
        assert_eq!(ports[0].target_port, Some(IntOrString::Int(8321)));
    }

    #[test]
    fn custom_port() {
        let cr = with_networking(json!({"port": 9443}));
        let s = service(&inputs(&cr)).unwrap();
        let ports = s.spec.unwrap().ports.unwrap();
        assert_eq!(ports[0].port, 9443);
        assert_eq!(ports[0].target_port, Some(IntOrString::Int(9443)));
    }

    #[test]
    fn deterministic() {
        let cr = minimal();
        assert_eq!(service(&inputs(&cr)), service(&inputs(&cr)));
    }
}
