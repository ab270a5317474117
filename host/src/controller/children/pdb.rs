//! The PodDisruptionBudget `<cr>-pdb` (v1alpha1-behavior §3.8), with proper instance labels
//! (upstream left `app.kubernetes.io/instance` empty, quirk 12).

use super::{
    BuildError, COMPONENT_SERVER, Inputs, cr_name, effective_replicas, names, object_meta,
    selector_labels, workload,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The budget, when `workload.podDisruptionBudget` is set (bounds copied as given, so `{}`
/// yields one with neither) or more than one pod runs (`maxUnavailable: 1`, so a drain
/// never takes every pod at once).
pub fn pdb(inputs: &Inputs) -> Result<Option<PodDisruptionBudget>, BuildError> {
    let cr = inputs.cr;
    let (min_available, max_unavailable) =
        match workload(cr).and_then(|w| w.pod_disruption_budget.as_ref()) {
            Some(p) => (p.min_available.clone(), p.max_unavailable.clone()),
            None if effective_replicas(cr) > 1 => (None, Some(IntOrString::Int(1))),
            None => return Ok(None),
        };
    let name = cr_name(cr)?;
    Ok(Some(PodDisruptionBudget {
        metadata: object_meta(cr, names::pdb(name), COMPONENT_SERVER)?,
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NAME, assert_server_owned, inputs, minimal, with_workload};
    use super::*;
    use serde_json::json;

    fn spec(cr: &crate::api::v1alpha2::LlamaStackDistribution) -> PodDisruptionBudgetSpec {
        pdb(&inputs(cr)).unwrap().unwrap().spec.unwrap()
    }

    #[test]
    fn absent_with_one_replica() {
        assert_eq!(pdb(&inputs(&minimal())).unwrap(), None);
        let cr = with_workload(json!({"replicas": 1}));
        assert_eq!(pdb(&inputs(&cr)).unwrap(), None);
        // replicas is ignored under autoscaling; the HPA floor (default 1) counts.
        let cr = with_workload(json!({"replicas": 4, "autoscaling": {"maxReplicas": 6}}));
        assert_eq!(pdb(&inputs(&cr)).unwrap(), None);
    }

    #[test]
    fn default_with_several_replicas() {
        let cr = with_workload(json!({"replicas": 2}));
        let p = pdb(&inputs(&cr)).unwrap().unwrap();
        assert_server_owned(&p.metadata, "demo-pdb");
        let spec = p.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.selector.unwrap().match_labels,
            Some(selector_labels(NAME))
        );
    }

    #[test]
    fn default_with_autoscaling_floor() {
        let cr = with_workload(json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}));
        assert_eq!(spec(&cr).max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn user_bounds_copied() {
        let cr = with_workload(json!({"podDisruptionBudget": {"minAvailable": "50%"}}));
        let s = spec(&cr);
        assert_eq!(s.min_available, Some(IntOrString::String("50%".into())));
        assert_eq!(s.max_unavailable, None);

        let cr =
            with_workload(json!({"replicas": 5, "podDisruptionBudget": {"maxUnavailable": 2}}));
        let s = spec(&cr);
        assert_eq!(s.min_available, None);
        assert_eq!(s.max_unavailable, Some(IntOrString::Int(2)));
    }

    #[test]
    fn empty_user_budget_has_no_bounds() {
        let cr = with_workload(json!({"podDisruptionBudget": {}}));
        let s = spec(&cr);
        assert_eq!((s.min_available, s.max_unavailable), (None, None));
    }
}
