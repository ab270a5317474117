//! The HorizontalPodAutoscaler `<cr>-hpa` (autoscaling/v2, v1alpha1-behavior §3.8).

use super::{BuildError, COMPONENT_SERVER, Inputs, cr_name, names, object_meta, workload};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

/// CPU utilization target when the CR names none.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// The autoscaler, when `workload.autoscaling` is set.
///
/// `minReplicas` is the CR's value, not raised to `replicas` as upstream did (bug 5: that
/// could exceed `maxReplicas` and get the HPA rejected). It is kept at least 1, since 0 needs
/// an alpha feature gate; `maxReplicas` is raised to `minReplicas` for the same reason.
pub fn hpa(inputs: &Inputs) -> Result<Option<HorizontalPodAutoscaler>, BuildError> {
    let cr = inputs.cr;
    let Some(a) = workload(cr).and_then(|w| w.autoscaling.as_ref()) else {
        return Ok(None);
    };
    let name = cr_name(cr)?;
    let min = a.min_replicas.unwrap_or(1).max(1);
    let mut metrics: Vec<MetricSpec> = [
        ("cpu", a.target_cpu_utilization_percentage),
        ("memory", a.target_memory_utilization_percentage),
    ]
    .into_iter()
    .filter_map(|(resource, target)| target.map(|t| utilization(resource, t)))
    .collect();
    if metrics.is_empty() {
        metrics.push(utilization("cpu", DEFAULT_CPU_UTILIZATION));
    }
    Ok(Some(HorizontalPodAutoscaler {
        metadata: object_meta(cr, names::hpa(name), COMPONENT_SERVER)?,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: names::deployment(name),
            },
            min_replicas: Some(min),
            max_replicas: a.max_replicas.max(min),
            metrics: Some(metrics),
            ..HorizontalPodAutoscalerSpec::default()
        },
        status: None,
    }))
}

/// A resource metric with an average utilization target (percent of the request).
fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_server_owned, inputs, minimal, with_workload};
    use super::*;
    use serde_json::{Value, json};

    fn spec(autoscaling: Value) -> HorizontalPodAutoscalerSpec {
        let cr = with_workload(json!({"replicas": 4, "autoscaling": autoscaling}));
        let h = hpa(&inputs(&cr)).unwrap().unwrap();
        assert_server_owned(&h.metadata, "demo-hpa");
        h.spec
    }

    fn targets(s: &HorizontalPodAutoscalerSpec) -> Vec<(String, String, Option<i32>)> {
        s.metrics
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m.type_, "Resource");
                let r = m.resource.as_ref().unwrap();
                (
                    r.name.clone(),
                    r.target.type_.clone(),
                    r.target.average_utilization,
                )
            })
            .collect()
    }

    #[test]
    fn absent_without_autoscaling() {
        assert_eq!(hpa(&inputs(&minimal())).unwrap(), None);
        let cr = with_workload(json!({"replicas": 3}));
        assert_eq!(hpa(&inputs(&cr)).unwrap(), None);
    }

    #[test]
    fn defaults() {
        let s = spec(json!({"maxReplicas": 5}));
        assert_eq!(
            s.scale_target_ref,
            CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: "demo".into(),
            }
        );
        // Not raised to replicas (4): upstream bug 5.
        assert_eq!(s.min_replicas, Some(1));
        assert_eq!(s.max_replicas, 5);
        assert_eq!(
            targets(&s),
            [("cpu".into(), "Utilization".into(), Some(80))]
        );
    }

    #[test]
    fn min_not_forced_to_replicas_and_max_not_below_min() {
        let s = spec(json!({"minReplicas": 2, "maxReplicas": 3}));
        assert_eq!((s.min_replicas, s.max_replicas), (Some(2), 3));
        let s = spec(json!({"minReplicas": 6, "maxReplicas": 3}));
        assert_eq!((s.min_replicas, s.max_replicas), (Some(6), 6));
        let s = spec(json!({"minReplicas": 0, "maxReplicas": 0}));
        assert_eq!((s.min_replicas, s.max_replicas), (Some(1), 1));
    }

    #[test]
    fn metrics() {
        let s = spec(json!({"maxReplicas": 5, "targetCPUUtilizationPercentage": 60}));
        assert_eq!(
            targets(&s),
            [("cpu".into(), "Utilization".into(), Some(60))]
        );
        let s = spec(json!({"maxReplicas": 5, "targetMemoryUtilizationPercentage": 70}));
        assert_eq!(
            targets(&s),
            [("memory".into(), "Utilization".into(), Some(70))]
        );
        let s = spec(
            json!({"maxReplicas": 5, "targetCPUUtilizationPercentage": 60,
            "targetMemoryUtilizationPercentage": 70}),
        );
        assert_eq!(
            targets(&s),
            [
                ("cpu".into(), "Utilization".into(), Some(60)),
                ("memory".into(), "Utilization".into(), Some(70))
            ]
        );
    }

    #[test]
    fn deterministic() {
        let cr = with_workload(json!({"autoscaling": {"maxReplicas": 3}}));
        assert_eq!(hpa(&inputs(&cr)), hpa(&inputs(&cr)));
    }
}
