//! What every step of a pass shares: the CR and its [`Scope`] (typed APIs in its namespace,
//! counted writes, Events), and how a pass ends ([`Pass`]).

use crate::api::v1alpha2::LlamaStackDistribution;
use crate::controller::Context;
use crate::controller::apply::{self, Outcome};
use crate::controller::caches::{Cached, Caches};
use crate::controller::error::Error;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

/// How a pass ended.
pub(super) struct Pass {
    pub action: Action,
    /// A user error is now in the status.
    pub failed: bool,
}

/// The CR of this pass and what every step does with it: typed APIs in its namespace, writes
/// that count in the metrics, Events.
pub(super) struct Scope<'a> {
    pub cr: &'a LlamaStackDistribution,
    pub ctx: &'a Context,
    /// The owned objects' metadata, listed (the pass reads these instead of the API server).
    pub caches: std::sync::Arc<Caches>,
    pub ns: String,
    pub name: String,
    pub uid: String,
}

impl<'a> Scope<'a> {
    pub fn new(
        cr: &'a LlamaStackDistribution,
        ctx: &'a Context,
        caches: std::sync::Arc<Caches>,
    ) -> Result<Scope<'a>, Error> {
        let ns = cr
            .namespace()
            .ok_or(Error::Metadata("LlamaStackDistribution", "namespace"))?;
        let name = cr.name_any();
        let uid = cr
            .uid()
            .ok_or(Error::Metadata("LlamaStackDistribution", "uid"))?;
        Ok(Scope {
            cr,
            ctx,
            caches,
            ns,
            name,
            uid,
        })
    }

    /// `ns/name`: the key of the per-CR state in [`Context`].
    pub fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), &self.ns)
    }

    /// [`apply::ensure`], counted as a write of `kind` when it wrote.
    pub async fn write<K>(
        &self,
        api: &Api<K>,
        obj: K,
        create_only: bool,
        kind: &'static str,
    ) -> Result<(Outcome, K), Error>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let (outcome, live) = apply::ensure(self.ctx, api, obj, create_only).await?;
        if outcome != Outcome::Unchanged {
            self.ctx.metrics.wrote(kind);
        }
        Ok((outcome, live))
    }

    /// [`apply::ensure_cached`], counted as a write of `kind` when it wrote.
    pub async fn write_cached<K>(
        &self,
        api: &Api<K>,
        obj: K,
        create_only: bool,
        kind: &'static str,
    ) -> Result<Outcome, Error>
    where
        K: Cached + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let outcome = apply::ensure_cached(self.ctx, &self.caches, api, obj, create_only).await?;
        if outcome != Outcome::Unchanged {
            self.ctx.metrics.wrote(kind);
        }
        Ok(outcome)
    }

    /// An optional child: `desired` written when the spec asks for it, else the CR's object
    /// `name` of that kind removed (the spec stopped asking).
    pub async fn write_or_remove<K>(
        &self,
        desired: Option<K>,
        name: &str,
        kind: &'static str,
    ) -> Result<(), Error>
    where
        K: Cached + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let api = self.api::<K>();
        match desired {
            Some(o) => drop(self.write_cached(&api, o, false, kind).await?),
            None => drop(self.remove(&api, name).await?),
        }
        Ok(())
    }

    /// Deletes `name` if this CR controls it ([`apply::remove_cached`]).
    pub async fn remove<K>(&self, api: &Api<K>, name: &str) -> Result<bool, Error>
    where
        K: Cached + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        apply::remove_cached(&self.caches, api, &self.ns, name, &self.uid).await
    }

    /// Publishes an Event on the CR; a failure to record is logged, never fatal.
    pub async fn event(&self, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(event_note(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        match self
            .ctx
            .recorder
            .publish(&ev, &self.cr.object_ref(&()))
            .await
        {
            Ok(()) => self.ctx.metrics.wrote("Event"),
            Err(e) => tracing::warn!(error = %e, reason, "failed to publish an event"),
        }
    }
}

/// The API server refuses an Event whose note exceeds 1 KiB (events.k8s.io/v1); a long list
/// of config warnings is cut at a character boundary and marked, so the Event is still written.
const MAX_EVENT_NOTE_BYTES: usize = 1024;

fn event_note(mut note: String) -> String {
    const MARK: &str = " …";
    if note.len() <= MAX_EVENT_NOTE_BYTES {
        return note;
    }
    let mut cut = MAX_EVENT_NOTE_BYTES - MARK.len();
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    note.truncate(cut);
    note.push_str(MARK);
    note
}

pub(super) fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::{MAX_EVENT_NOTE_BYTES, event_note};

    #[test]
    fn a_short_note_is_kept_as_it_is() {
        let note = "x".repeat(MAX_EVENT_NOTE_BYTES);
        assert_eq!(event_note(note.clone()), note);
    }

    #[test]
    fn a_long_note_is_cut_to_the_api_limit_at_a_char_boundary() {
        // 3-byte characters so that the cut falls inside one unless it is moved.
        let note = "warning € ".repeat(200);
        let cut = event_note(note.clone());
        assert!(cut.len() <= MAX_EVENT_NOTE_BYTES, "{} bytes", cut.len());
        assert!(
            cut.len() > MAX_EVENT_NOTE_BYTES - 8,
            "cut too short: {}",
            cut.len()
        );
        assert!(cut.ends_with(" …"));
        assert!(note.starts_with(cut.trim_end_matches(" …")));
    }
}
