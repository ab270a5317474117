//! Writes that happen only when something changed (FR-096: a no-op reconcile makes zero write
//! requests). Each desired object carries the sha256 of its own content in an annotation; an
//! object whose annotation matches is left alone unless someone else changed its spec since
//! our last write, which the object's `metadata.generation` shows (drift repair).

use super::Context;
use super::caches::{Cached, Caches};
use super::children::{APPLIED_HASH_ANNOTATION, MANAGER, desired_hash};
use super::error::{self, Error};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
}

/// Server-side applies `desired` unless the live object already is what we would write.
/// `create_only` objects (PVCs) are never changed once they exist.
pub async fn ensure<K>(
    ctx: &Context,
    api: &Api<K>,
    desired: K,
    create_only: bool,
) -> Result<(Outcome, K), Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = desired.name_any();
    let live = api
        .get_opt(&name)
        .await
        .map_err(api_err("read", &format!("{} {name}", K::kind(&()))))?;
    ensure_against(ctx, api, desired, create_only, live).await
}

/// [`ensure`] with the live object already read in this reconcile (no second GET).
pub async fn ensure_against<K>(
    ctx: &Context,
    api: &Api<K>,
    mut desired: K,
    create_only: bool,
    live: Option<K>,
) -> Result<(Outcome, K), Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let key = stamp(ctx, &mut desired);
    if let Some(live) = &live
        && up_to_date(ctx, &key, &desired, live.meta(), create_only)
    {
        return Ok((Outcome::Unchanged, live.clone()));
    }
    let written = apply(ctx, api, &desired, key, live.is_none()).await?;
    Ok((outcome(live.is_some()), written))
}

/// [`ensure`] for a kind the caches keep: decided on the cached metadata, so an unchanged
/// object costs no request. A cache that has not yet seen our last write costs one no-op
/// apply at worst.
pub async fn ensure_cached<K>(
    ctx: &Context,
    caches: &Caches,
    api: &Api<K>,
    mut desired: K,
    create_only: bool,
) -> Result<Outcome, Error>
where
    K: Cached + Clone + Serialize + DeserializeOwned + Debug,
{
    let cached = caches.get::<K>(
        &desired.namespace().unwrap_or_default(),
        &desired.name_any(),
    );
    let key = stamp(ctx, &mut desired);
    if let Some(live) = &cached
        && up_to_date(ctx, &key, &desired, &live.metadata, create_only)
    {
        return Ok(Outcome::Unchanged);
    }
    apply(ctx, api, &desired, key, cached.is_none()).await?;
    Ok(outcome(cached.is_some()))
}

/// Puts the content hash on `desired`; returns its drift key.
fn stamp<K: Resource<DynamicType = ()> + Serialize>(ctx: &Context, desired: &mut K) -> String {
    let hash = desired_hash(desired);
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.into(), hash);
    ctx.drift_key::<K>(desired)
}

/// The live object carries what we would write and nobody changed its spec since (or it is
/// never changed once it exists).
fn up_to_date<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    key: &str,
    desired: &K,
    live: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    create_only: bool,
) -> bool {
    let hash = desired.annotations().get(APPLIED_HASH_ANNOTATION);
    let same_content = live
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
        == hash;
    create_only || (same_content && !ctx.drifted(key, live.generation))
}

fn outcome(existed: bool) -> Outcome {
    if existed {
        Outcome::Updated
    } else {
        Outcome::Created
    }
}

/// The server-side apply of `desired` (forced: we own these fields).
async fn apply<K>(
    ctx: &Context,
    api: &Api<K>,
    desired: &K,
    key: String,
    created: bool,
) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = desired.name_any();
    let what = format!(
        "{} {}/{}",
        K::kind(&()),
        desired.namespace().unwrap_or_default(),
        name
    );
    let written = api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await
        .map_err(api_err("apply", &what))?;
    ctx.remember_generation(key, written.meta().generation);
    tracing::info!(object = %what, created, "applied");
    Ok(written)
}

/// Deletes `name` if the CR (by uid) controls it, decided on the cache: an object the watch
/// has not seen costs no request, and objects of others are never touched.
pub async fn remove_cached<K>(
    caches: &Caches,
    api: &Api<K>,
    ns: &str,
    name: &str,
    owner_uid: &str,
) -> Result<bool, Error>
where
    K: Cached + Clone + DeserializeOwned + Debug,
{
    match caches.get::<K>(ns, name) {
        Some(live) if controlled_by(live.owner_references(), owner_uid) => {
            delete::<K>(api, name).await
        }
        _ => Ok(false),
    }
}

fn controlled_by(
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    owner_uid: &str,
) -> bool {
    refs.iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true))
}

async fn delete<K>(api: &Api<K>, name: &str) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let what = format!("{} {name}", K::kind(&()));
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(object = %what, "deleted");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(error::api("delete", what)(e)),
    }
}

fn api_err(verb: &'static str, what: &str) -> impl FnOnce(kube::Error) -> Error {
    error::api(verb, what.to_string())
}
