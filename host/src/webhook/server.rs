//! TLS termination and the accept loop (rustls; one task per connection).

use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to read the serving certificate: {0}")]
    Certificate(String),
    #[error("failed to read the serving key: {0}")]
    Key(String),
    #[error("failed to build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("failed to accept a connection: {0}")]
    Accept(#[from] std::io::Error),
}

/// A rustls server configuration from PEM certificate chain and key (a fixed certificate).
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    CertStore::new(cert_pem, key_pem)?.tls_config()
}

/// Serves `router` over TLS on `listener` until the task is dropped. A failed handshake
/// ends that connection only.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            // One per connection: the API server keeps its connections, so many of these
            // under a steady load mean handshakes paid again.
            tracing::debug!(%peer, "TLS connection accepted");
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// The serving certificate, swappable while connections are accepted: rotation (operator
/// certificates) and cert-manager renewals take effect without a restart.
#[derive(Debug)]
pub struct CertStore {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::sign::CertifiedKey, ServeError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(ServeError::Certificate("no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ServeError::Key(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| ServeError::Key(e.to_string()))?;
    Ok(rustls::sign::CertifiedKey::new(chain, signing))
}

impl CertStore {
    pub fn new(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertStore>, ServeError> {
        Ok(Arc::new(CertStore {
            current: std::sync::RwLock::new(Arc::new(certified_key(cert_pem, key_pem)?)),
        }))
    }

    /// Serves `cert_pem`/`key_pem` from the next handshake on.
    pub fn replace(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), ServeError> {
        let next = Arc::new(certified_key(cert_pem, key_pem)?);
        if let Ok(mut cur) = self.current.write() {
            *cur = next;
        }
        Ok(())
    }

    /// A rustls configuration answering every handshake with the current certificate.
    pub fn tls_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, ServeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl rustls::server::ResolvesServerCert for CertStore {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}
