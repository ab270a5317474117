//! What the running server says about itself (issue 17): `GET /v1/version` and
//! `GET /v1/providers`, as upstream's v1alpha1 operator reads them, for
//! `status.version.llamaStackServerVersion` and `status.distributionConfig.providers`.
//!
//! The operator reaches the server at its Service's ClusterIP. That works the same from the
//! operator's pod and from a process on a node (the tests run it so), needs no cluster DNS,
//! and the NetworkPolicy the operator generates admits the operator's namespace. A server
//! that serves TLS is verified, under the Service's DNS name, against its Secret's `ca.crt`,
//! or its own `tls.crt` when the Secret has no CA (a self-signed certificate).

use super::status::Cond;
use crate::api::shared::{ProviderHealth, ServerProvider};
use crate::api::v1alpha2::LlamaStackDistributionStatus;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Per request: a server that does not answer its own version within this is unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server listens.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The Service's ClusterIP and port.
    pub addr: SocketAddr,
    /// `<service>.<namespace>.svc`: the name the certificate is checked against.
    pub host: String,
    /// PEM trust roots when the server serves TLS.
    pub tls_roots: Option<Vec<u8>>,
}

impl Target {
    pub fn new(ip: IpAddr, port: u16, service: &str, ns: &str) -> Target {
        Target {
            addr: SocketAddr::new(ip, port),
            host: format!("{service}.{ns}.svc"),
            tls_roots: None,
        }
    }

    /// The server behind `service` (in `ns`) on `port`, at the Service's ClusterIP; `Err`
    /// says why it cannot be reached (a headless Service has no ClusterIP).
    pub fn of_service(service: &Service, ns: &str, port: i32) -> Result<Target, String> {
        let ip = service
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let (Some(ip), Ok(port)) = (ip, u16::try_from(port)) else {
            return Err(format!(
                "Service {ns}/{} has no ClusterIP to reach the server at",
                service.name_any()
            ));
        };
        Ok(Target::new(ip, port, &service.name_any(), ns))
    }

    fn base(&self) -> String {
        match self.tls_roots {
            Some(_) => format!("https://{}:{}", self.host, self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }
}

/// The server's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub version: String,
    pub providers: Vec<ServerProvider>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerInfoError {
    #[error("the TLS Secret's certificate cannot be used as a trust root: {0}")]
    Roots(#[source] reqwest::Error),
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("GET {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: not the answer of a llama-stack server: {source}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Deserialize)]
struct Providers {
    data: Vec<Provider>,
}

/// Lenient: a field the server leaves out is empty rather than a failed read.
#[derive(Deserialize)]
struct Provider {
    #[serde(default)]
    api: String,
    #[serde(default)]
    provider_id: String,
    #[serde(default)]
    provider_type: String,
    #[serde(default)]
    config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    health: Option<Health>,
}

#[derive(Deserialize, Default)]
struct Health {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Asks the server for its version and providers.
pub async fn read(http: &reqwest::Client, target: &Target) -> Result<ServerInfo, ServerInfoError> {
    let client = match &target.tls_roots {
        None => http.clone(),
        Some(pem) => {
            let roots =
                reqwest::Certificate::from_pem_bundle(pem).map_err(ServerInfoError::Roots)?;
            reqwest::Client::builder()
                .no_proxy()
                .timeout(TIMEOUT)
                .pool_idle_timeout(POOL_IDLE)
                .tls_certs_only(roots)
                .resolve(&target.host, target.addr)
                .build()
                .map_err(ServerInfoError::Client)?
        }
    };
    let base = target.base();
    let version: Version = get(&client, &format!("{base}/v1/version")).await?;
    let providers: Providers = get(&client, &format!("{base}/v1/providers")).await?;
    let mut providers: Vec<ServerProvider> = providers
        .data
        .into_iter()
        .map(|p| {
            let health = p.health.unwrap_or_default();
            ServerProvider {
                api: p.api,
                provider_id: p.provider_id,
                provider_type: p.provider_type,
                config: p.config.unwrap_or_default(),
                health: ProviderHealth {
                    status: health.status.unwrap_or_default(),
                    message: health.message.unwrap_or_default(),
                },
            }
        })
        .collect();
    // A stable order, so an unchanged server never rewrites the status.
    providers.sort_by(|a, b| (&a.api, &a.provider_id).cmp(&(&b.api, &b.provider_id)));
    Ok(ServerInfo {
        version: version.version,
        providers,
    })
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, ServerInfoError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|source| ServerInfoError::Request {
            url: url.to_string(),
            source,
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ServerInfoError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    resp.json().await.map_err(|source| ServerInfoError::Decode {
        url: url.to_string(),
        source,
    })
}

/// How long a connection to a server stays open after a read: long enough for the read's two
/// requests to share it, and no longer. Reads come a minute apart, and the pool's default (90 s)
/// kept one connection with its buffers per server: ~24 KiB each, 6 MiB at 250 servers.
const POOL_IDLE: Duration = Duration::from_secs(2);

/// The shared client for plain-HTTP servers: no proxy (the ClusterIP is local to the
/// cluster), short timeouts.
pub fn http_client() -> Result<reqwest::Client, ServerInfoError> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .pool_idle_timeout(POOL_IDLE)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(ServerInfoError::Client)
}

/// How often a Ready server is asked again.
pub const REFRESH: Duration = Duration::from_secs(60);

/// The condition saying whether the operator could read the server.
pub const SERVER_REACHABLE: &str = "ServerReachable";

/// Puts a read into `status` (its version and providers; `lastUpdated` moves only when they
/// change, so an unchanged server causes no status write) and words the condition. A failed
/// read keeps the last known answers.
pub fn apply(
    read: Result<ServerInfo, String>,
    status: &mut LlamaStackDistributionStatus,
    now: Time,
) -> Cond {
    let info = match read {
        Ok(info) => info,
        Err(message) => {
            return Cond::new(
                SERVER_REACHABLE,
                false,
                "ServerUnreachable",
                format!("{message} (asked again each minute)"),
            );
        }
    };
    let version = status.version.get_or_insert_with(Default::default);
    let config = status
        .distribution_config
        .get_or_insert_with(Default::default);
    if version.llama_stack_server_version.as_deref() != Some(info.version.as_str())
        || config.providers.as_ref() != Some(&info.providers)
    {
        version.last_updated = Some(now);
    }
    let unhealthy: Vec<String> = info
        .providers
        .iter()
        .filter(|p| p.health.status == "Error")
        .map(|p| format!("{}/{}: {}", p.api, p.provider_id, p.health.message))
        .collect();
    let mut message = format!(
        "llama-stack {} reports {} providers",
        info.version,
        info.providers.len()
    );
    if !unhealthy.is_empty() {
        message.push_str(&format!("; unhealthy: {}", unhealthy.join("; ")));
    }
    version.llama_stack_server_version = Some(info.version);
    config.providers = Some(info.providers);
    Cond::new(SERVER_REACHABLE, true, "ServerAnswered", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn the_server_is_reached_at_its_services_cluster_ip() {
        let service = |ip: &str| Service {
            metadata: kube::api::ObjectMeta {
                name: Some("demo-service".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = Target::of_service(&service("10.0.0.7"), "team", 8321).expect("reachable");
        assert_eq!(t.addr, "10.0.0.7:8321".parse().expect("addr"));
        assert_eq!(t.host, "demo-service.team.svc");
        assert_eq!(t.tls_roots, None);
        // Headless, not allocated yet, or a port no socket has: why, not where.
        for (svc, port) in [
            (service("None"), 8321),
            (service(""), 8321),
            (service("10.0.0.7"), 70_000),
        ] {
            assert_eq!(
                Target::of_service(&svc, "team", port).map(|t| t.addr),
                Err("Service team/demo-service has no ClusterIP to reach the server at".into())
            );
        }
    }

    fn provider(id: &str, health: &str) -> ServerProvider {
        ServerProvider {
            api: "inference".into(),
            provider_id: id.into(),
            provider_type: "remote::vllm".into(),
            config: Default::default(),
            health: ProviderHealth {
                status: health.into(),
                message: if health == "Error" {
                    "down".into()
                } else {
                    String::new()
                },
            },
        }
    }

    #[test]
    fn last_updated_moves_only_when_the_answers_change() {
        let t0 = Time(Timestamp::from_second(1_000).expect("valid"));
        let t1 = Time(Timestamp::from_second(2_000).expect("valid"));
        let info = ServerInfo {
            version: "0.7.3".into(),
            providers: vec![provider("vllm", "OK")],
        };
        let mut st = LlamaStackDistributionStatus::default();
        let c = apply(Ok(info.clone()), &mut st, t0.clone());
        assert_eq!(c.message, "llama-stack 0.7.3 reports 1 providers");
        let v = st.version.clone().unwrap_or_default();
        assert_eq!(
            (
                v.llama_stack_server_version.as_deref(),
                v.last_updated.clone()
            ),
            (Some("0.7.3"), Some(t0.clone()))
        );
        apply(Ok(info), &mut st, t1.clone());
        assert_eq!(
            st.version.as_ref().and_then(|v| v.last_updated.clone()),
            Some(t0)
        );
        let sick = ServerInfo {
            version: "0.7.3".into(),
            providers: vec![provider("vllm", "Error")],
        };
        let c = apply(Ok(sick), &mut st, t1.clone());
        assert_eq!(
            st.version.as_ref().and_then(|v| v.last_updated.clone()),
            Some(t1.clone())
        );
        assert_eq!(
            c.message,
            "llama-stack 0.7.3 reports 1 providers; unhealthy: inference/vllm: down"
        );
        // Unreachable: the last answers stay, the condition says why.
        let c = apply(
            Err("GET http://10.0.0.1:8321/v1/version: timed out".into()),
            &mut st,
            t1,
        );
        assert_eq!((c.ok, c.reason.as_str()), (false, "ServerUnreachable"));
        assert!(
            st.distribution_config
                .is_some_and(|d| d.providers.is_some())
        );
    }
}
