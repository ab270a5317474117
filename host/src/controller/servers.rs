//! Reads of the running servers (issue 17), off the reconcile workers (issue 18).
//!
//! A Ready CR's pass asks [`Servers::answer`] for its server's answer. The first time for a
//! config, that starts a follower task: it reads the server at once, then every
//! [`server_info::REFRESH`]. The pass waits up to [`INLINE_READ`] for the first answer, so a
//! new server's Ready status and its answers go out in one write. A slower answer brings one
//! more pass of its CR when it comes, and so does a later answer that differs in substance
//! (see [`differs`]). An unchanged server thus costs no pass at all, and a server that does not
//! answer costs its timeout in the follower, not in a worker that new CRs wait for.

use super::server_info::{self, ServerInfo, Target};
use crate::api::v1alpha2::LlamaStackDistribution;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// A read's outcome: the answers, or why there are none, as the condition words it.
pub type Read = Result<ServerInfo, String>;

/// How long a pass waits for a new server's first answer before leaving it to the follower.
const INLINE_READ: Duration = Duration::from_millis(300);

/// Reads in flight at most: each waits on the network, not a CPU.
const READS_AT_ONCE: usize = 32;

/// What a pass learns from [`Servers::answer`].
#[derive(Debug)]
pub enum Answer {
    /// The server's latest answer for this config.
    Known(Read),
    /// The first read is still under way; its answer brings the next pass.
    Pending,
}

/// The server of one CR as its follower reads it.
struct Followed {
    /// The generated ConfigMap the server runs: a new config is a new server to read.
    config: String,
    target: Target,
    /// Which follower this entry belongs to: a follower that was between two awaits when
    /// it was replaced must not store into its successor's entry.
    epoch: u64,
    answer: Option<Read>,
    /// Its follower's task, stopped when the entry is replaced or removed (no read of a
    /// server nobody asks about any more).
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Where a finished read asks for a pass, and the CRs that still exist.
struct Wiring {
    trigger: mpsc::UnboundedSender<ObjectRef<LlamaStackDistribution>>,
    crs: Store<LlamaStackDistribution>,
}

/// The followed servers, by CR (`ns/name`).
pub struct Servers {
    followed: Arc<Mutex<HashMap<String, Followed>>>,
    slots: Arc<Semaphore>,
    epochs: std::sync::atomic::AtomicU64,
    /// The client for plain-HTTP servers, built at the first read.
    http: OnceLock<reqwest::Client>,
    wiring: OnceLock<Arc<Wiring>>,
    /// Between two reads of a server ([`server_info::REFRESH`]; tests shorten it).
    refresh: Duration,
}

impl Default for Servers {
    fn default() -> Self {
        Servers {
            followed: Arc::default(),
            slots: Arc::new(Semaphore::new(READS_AT_ONCE)),
            epochs: Default::default(),
            http: OnceLock::new(),
            wiring: OnceLock::new(),
            refresh: server_info::REFRESH,
        }
    }
}

impl Servers {
    /// Connects the followers to the controller: `trigger` brings a pass of a CR, `crs` says
    /// which CRs still exist (a follower of a deleted CR stops).
    pub fn wire(
        &self,
        trigger: mpsc::UnboundedSender<ObjectRef<LlamaStackDistribution>>,
        crs: Store<LlamaStackDistribution>,
    ) {
        let _ = self.wiring.set(Arc::new(Wiring { trigger, crs }));
    }

    /// The latest answer of `cr`'s server running `config` at `target`. A server not followed
    /// yet (a new CR, a new config, a moved Service, a new CA) gets a follower, and the pass
    /// waits up to [`INLINE_READ`] for its first answer.
    pub async fn answer(
        &self,
        cr: ObjectRef<LlamaStackDistribution>,
        config: &str,
        target: Target,
    ) -> Answer {
        let key = key(&cr);
        let first = {
            let Ok(mut followed) = self.followed.lock() else {
                return Answer::Known(Err("server reads: lock poisoned".into()));
            };
            match followed.get(&key) {
                Some(f) if f.config == config && f.target == target => {
                    return match &f.answer {
                        Some(read) => Answer::Known(read.clone()),
                        None => Answer::Pending,
                    };
                }
                _ => {}
            }
            let http = match self.http() {
                Ok(http) => http,
                Err(e) => return Answer::Known(Err(e)),
            };
            let epoch = self
                .epochs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            followed.insert(
                key.clone(),
                Followed {
                    config: config.to_string(),
                    target: target.clone(),
                    epoch,
                    answer: None,
                    task: None,
                },
            );
            let (tx, rx) = oneshot::channel();
            let follower = Follower {
                key: key.clone(),
                cr,
                epoch,
                target,
                http,
                followed: self.followed.clone(),
                slots: self.slots.clone(),
                wiring: self.wiring.get().cloned(),
                refresh: self.refresh,
            };
            let task = tokio::spawn(follower.run(tx)).abort_handle();
            if let Some(f) = followed.get_mut(&key) {
                f.task = Some(task);
            }
            rx
        };
        let mut first = first;
        if let Ok(Ok(read)) = tokio::time::timeout(INLINE_READ, &mut first).await {
            return Answer::Known(read);
        }
        // Closed first, so that an answer is either taken here or brings a pass: never lost
        // between the two.
        first.close();
        match first.try_recv() {
            Ok(read) => Answer::Known(read),
            Err(_) => Answer::Pending,
        }
    }

    /// Stops following `cr`'s server (it is not Ready, or cannot be reached at all).
    pub fn forget(&self, cr: &ObjectRef<LlamaStackDistribution>) {
        if let Ok(mut followed) = self.followed.lock() {
            followed.remove(&key(cr));
        }
    }

    /// How many servers are followed.
    pub fn followed(&self) -> usize {
        self.followed.lock().map(|f| f.len()).unwrap_or_default()
    }

    fn http(&self) -> Result<reqwest::Client, String> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let c = server_info::http_client().map_err(|e| e.to_string())?;
        Ok(self.http.get_or_init(|| c).clone())
    }
}

/// One server's reads: now, then every `refresh`, until its CR is deleted or
/// its entry is replaced or forgotten.
struct Follower {
    key: String,
    cr: ObjectRef<LlamaStackDistribution>,
    epoch: u64,
    target: Target,
    http: reqwest::Client,
    followed: Arc<Mutex<HashMap<String, Followed>>>,
    slots: Arc<Semaphore>,
    wiring: Option<Arc<Wiring>>,
    refresh: Duration,
}

impl Follower {
    async fn run(self, first: oneshot::Sender<Read>) {
        let mut first = Some(first);
        loop {
            let read = {
                let _slot = self.slots.acquire().await;
                // Boxed: the HTTP client's future is kilobytes, and a follower sleeps between
                // reads far longer than it reads (1,000 followers held it all the time).
                Box::pin(server_info::read(&self.http, &self.target))
                    .await
                    .map_err(|e| {
                        tracing::info!(server = %self.target.addr, error = %e, "server not readable");
                        error_chain(&e)
                    })
            };
            let Some(changed) = self.store(&read) else {
                return;
            };
            // The pass that started this follower takes the first answer if it still waits;
            // otherwise the answer brings a pass of its own.
            let taken = first.take().is_some_and(|tx| tx.send(read).is_ok());
            if changed
                && !taken
                && let Some(w) = &self.wiring
            {
                let _ = w.trigger.send(self.cr.clone());
            }
            tokio::time::sleep(self.refresh).await;
            if let Some(w) = &self.wiring
                && w.crs.get(&self.cr).is_none()
            {
                self.stop();
                return;
            }
        }
    }

    /// Keeps `read` as the latest answer; whether it differs in substance from the one before.
    /// `None`: this follower was replaced or forgotten.
    fn store(&self, read: &Read) -> Option<bool> {
        let mut followed = self.followed.lock().ok()?;
        let f = followed
            .get_mut(&self.key)
            .filter(|f| f.epoch == self.epoch)?;
        let changed = f.answer.as_ref().is_none_or(|before| differs(before, read));
        f.answer = Some(read.clone());
        Some(changed)
    }

    fn stop(&self) {
        if let Ok(mut followed) = self.followed.lock()
            && followed
                .get(&self.key)
                .is_some_and(|f| f.epoch == self.epoch)
        {
            followed.remove(&self.key);
        }
    }
}

/// Whether an answer is worth a pass: other versions or providers, or the server became
/// reachable or unreachable. One failure after another is not: a server that times out one
/// minute and is refused the next would otherwise rewrite its CR's status every minute. The
/// next pass for any other reason words the newest failure.
fn differs(before: &Read, now: &Read) -> bool {
    match (before, now) {
        (Ok(a), Ok(b)) => a != b,
        (Err(_), Err(_)) => false,
        _ => true,
    }
}

fn key(cr: &ObjectRef<LlamaStackDistribution>) -> String {
    format!(
        "{}/{}",
        cr.namespace.as_deref().unwrap_or_default(),
        cr.name
    )
}

/// An error with its sources (`connection refused` sits under reqwest's own words).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: &str) -> Read {
        Ok(ServerInfo {
            version: version.into(),
            providers: Vec::new(),
        })
    }

    #[test]
    fn only_a_change_in_substance_is_worth_a_pass() {
        assert!(!differs(&info("0.7.3"), &info("0.7.3")));
        assert!(differs(&info("0.7.3"), &info("0.7.4")));
        assert!(differs(&info("0.7.3"), &Err("timed out".into())));
        assert!(differs(&Err("timed out".into()), &info("0.7.3")));
        // A timeout, then a refusal: still unreachable, no pass.
        assert!(!differs(
            &Err("timed out".into()),
            &Err("connection refused".into())
        ));
    }

    /// A loopback server that answers as llama-stack does, `version` changing on demand.
    async fn fake_server(version: Arc<Mutex<String>>) -> std::net::SocketAddr {
        fake_server_counting(version, Default::default()).await
    }

    /// [`fake_server`], counting the requests in `hits`.
    async fn fake_server_counting(
        version: Arc<Mutex<String>>,
        hits: Arc<std::sync::atomic::AtomicUsize>,
    ) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let version = version.clone();
                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let body = if req.starts_with("GET /v1/version") {
                        let v = version.lock().map(|v| v.clone()).unwrap_or_default();
                        format!("{{\"version\":\"{v}\"}}")
                    } else {
                        "{\"data\":[]}".to_string()
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_new_server_is_read_within_the_pass_then_followed() {
        let version = Arc::new(Mutex::new("0.7.3".to_string()));
        let addr = fake_server(version.clone()).await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let servers = Servers::default();
        let cr = ObjectRef::new("demo").within("team");
        let target = Target::new(addr.ip(), addr.port(), "demo-service", "team");
        // First time: read within the pass.
        match servers.answer(cr.clone(), "cm-1", target.clone()).await {
            Answer::Known(Ok(i)) => assert_eq!(i.version, "0.7.3"),
            other => panic!("first answer: {other:?}"),
        }
        // Then from the follower, without a read.
        *version.lock().expect("lock") = "0.7.4".into();
        match servers.answer(cr.clone(), "cm-1", target.clone()).await {
            Answer::Known(Ok(i)) => assert_eq!(i.version, "0.7.3"),
            other => panic!("followed answer: {other:?}"),
        }
        // A new config is a new server: read again.
        match servers.answer(cr.clone(), "cm-2", target.clone()).await {
            Answer::Known(Ok(i)) => assert_eq!(i.version, "0.7.4"),
            other => panic!("new config: {other:?}"),
        }
        assert_eq!(servers.followed(), 1);
        servers.forget(&cr);
        assert_eq!(servers.followed(), 0);
    }

    #[tokio::test]
    async fn a_changed_answer_brings_a_pass_and_a_deleted_cr_stops_its_follower() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let version = Arc::new(Mutex::new("0.7.3".to_string()));
        let addr = fake_server(version.clone()).await;
        let servers = Servers {
            refresh: Duration::from_millis(50),
            ..Servers::default()
        };
        let cr = crate::controller::children::testing::minimal();
        let cr_ref = ObjectRef::from_obj(&cr);
        let (store, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(cr.clone()));
        let (tx, mut passes) = mpsc::unbounded_channel();
        servers.wire(tx, store);
        let target = Target::new(addr.ip(), addr.port(), "demo-service", "team");
        assert!(matches!(
            servers.answer(cr_ref.clone(), "cm-1", target.clone()).await,
            Answer::Known(Ok(_))
        ));
        // Unchanged answers bring no pass.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(passes.try_recv().is_err(), "a pass for an unchanged server");
        // A new version does, once, and the next pass finds it.
        *version.lock().expect("lock") = "0.7.4".into();
        let pass = tokio::time::timeout(Duration::from_secs(5), passes.recv()).await;
        assert_eq!(pass.ok().flatten(), Some(cr_ref.clone()));
        match servers.answer(cr_ref.clone(), "cm-1", target.clone()).await {
            Answer::Known(Ok(i)) => assert_eq!(i.version, "0.7.4"),
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(passes.try_recv().is_err(), "a second pass for one change");
        // The CR is gone: its follower stops and forgets it.
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Delete(cr));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(servers.followed(), 0);
    }

    #[tokio::test]
    async fn a_forgotten_server_is_not_read_again() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let addr = fake_server_counting(Arc::new(Mutex::new("0.7.3".into())), hits.clone()).await;
        let servers = Servers {
            refresh: Duration::from_millis(50),
            ..Servers::default()
        };
        let cr = ObjectRef::new("demo").within("team");
        let target = Target::new(addr.ip(), addr.port(), "demo-service", "team");
        assert!(matches!(
            servers.answer(cr.clone(), "cm-1", target).await,
            Answer::Known(Ok(_))
        ));
        // Followed: read again every `refresh`.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(hits.load(std::sync::atomic::Ordering::Relaxed) > 2);
        // Forgotten (the server is no longer Ready): its follower stops at once.
        servers.forget(&cr);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = hits.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), after);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_answer_not_a_wait() {
        // A port nothing listens on: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let servers = Servers::default();
        let target = Target::new(addr.ip(), addr.port(), "demo-service", "team");
        match servers
            .answer(ObjectRef::new("demo").within("team"), "cm-1", target)
            .await
        {
            Answer::Known(Err(message)) => {
                assert!(message.contains("/v1/version"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
