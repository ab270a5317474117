//! Metadata of the objects the operator owns, kept by the watches that trigger reconciles.
//! A pass reads them instead of a GET per object (issue 18): whether an object exists, is
//! ours, and carries the content hash we would write; and the operator ConfigMap, whose
//! settings every pass uses. Objects whose content a pass needs (the
//! Deployment's status, the Service's ClusterIP, the pods) are still read from the API server.
//!
//! managedFields are dropped before an object enters a cache: they are most of an object's
//! metadata, and nothing here reads them.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;

/// One metadata store per owned kind read from a cache.
pub struct Caches {
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub config_maps: Store<PartialObjectMeta<ConfigMap>>,
    pub pvcs: Store<PartialObjectMeta<PersistentVolumeClaim>>,
    pub pdbs: Store<PartialObjectMeta<PodDisruptionBudget>>,
    pub hpas: Store<PartialObjectMeta<HorizontalPodAutoscaler>>,
    pub network_policies: Store<PartialObjectMeta<NetworkPolicy>>,
    pub ingresses: Store<PartialObjectMeta<Ingress>>,
    /// The operator ConfigMap, whole: its data are the operator's settings.
    pub operator_config: Store<ConfigMap>,
    /// The watched namespaces' metadata: whether one is being deleted.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

/// A kind whose metadata [`Caches`] keeps.
pub trait Cached:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Sized + 'static
{
    fn store(caches: &Caches) -> &Store<PartialObjectMeta<Self>>;
}

macro_rules! cached {
    ($($kind:ty => $field:ident),* $(,)?) => {
        $(impl Cached for $kind {
            fn store(caches: &Caches) -> &Store<PartialObjectMeta<Self>> {
                &caches.$field
            }
        })*
    };
}

cached! {
    ServiceAccount => service_accounts,
    ConfigMap => config_maps,
    PersistentVolumeClaim => pvcs,
    PodDisruptionBudget => pdbs,
    HorizontalPodAutoscaler => hpas,
    NetworkPolicy => network_policies,
    Ingress => ingresses,
}

impl Caches {
    /// The cached metadata of `ns/name`, if the watch has seen it.
    pub fn get<K: Cached>(&self, ns: &str, name: &str) -> Option<Arc<PartialObjectMeta<K>>> {
        K::store(self).get(&ObjectRef::new(name).within(ns))
    }

    /// Every cached object of kind `K` in `ns`.
    pub fn in_namespace<K: Cached>(&self, ns: &str) -> Vec<Arc<PartialObjectMeta<K>>> {
        K::store(self)
            .state()
            .into_iter()
            .filter(|o| o.metadata.namespace.as_deref() == Some(ns))
            .collect()
    }

    /// Whether `ns` is being deleted. Its CRs go with it, the garbage collector removes what
    /// they own, and the API server refuses new objects there: a pass writes nothing, not
    /// even a status (issue 18: namespace deletion).
    pub fn namespace_terminating(&self, ns: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(ns))
            .is_some_and(|n| n.metadata.deletion_timestamp.is_some())
    }

    /// Resolves once every store holds its first list; a pass must not take "not in the
    /// cache" for "does not exist" before that. One waiter per store: their readiness signal
    /// wakes only one.
    pub async fn synced(&self) {
        let _ = self.service_accounts.wait_until_ready().await;
        let _ = self.config_maps.wait_until_ready().await;
        let _ = self.pvcs.wait_until_ready().await;
        let _ = self.pdbs.wait_until_ready().await;
        let _ = self.hpas.wait_until_ready().await;
        let _ = self.network_policies.wait_until_ready().await;
        let _ = self.ingresses.wait_until_ready().await;
        let _ = self.operator_config.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
    }
}
