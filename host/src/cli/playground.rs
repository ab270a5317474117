//! `llama-stack-operator playground [--dir DIR] [--address ADDR] [--port PORT]`.
//!
//! Serves the browser playground's build output (`playground/dist/`) on loopback so it can be
//! opened locally. This is a plain static file server and nothing more: there is no server-side
//! logic, because everything runs in the browser, on the same WebAssembly component the operator
//! runs. The only things the server has to get right are the ones browsers are strict about:
//! `application/wasm` for `WebAssembly.compileStreaming`, gzip for the large `.wasm`, and
//! revalidation on every load (`Cache-Control: no-cache`), since each build replaces the files.

use axum::Router;
use axum::routing::get_service;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to serve: the playground's build output, with an index.html.
    #[arg(
        long = "dir",
        env = "LLSD_PLAYGROUND_DIR",
        default_value = "playground/dist"
    )]
    pub dir: PathBuf,
    /// The address to listen on.
    #[arg(long = "address", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub address: IpAddr,
    /// The port to listen on; 0 lets the OS choose one (the line printed on start names it).
    #[arg(long = "port", default_value_t = 8380)]
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error(
        "{}/index.html not found: build the playground first (make playground) or pass --dir",
        .dir.display()
    )]
    MissingIndex { dir: PathBuf },
    #[error("cannot resolve {}: {source}", .dir.display())]
    Resolve {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving the playground failed: {0}")]
    Serve(std::io::Error),
}

pub fn run(args: &Args) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: &Args) -> Result<(), PlaygroundError> {
    let dir = checked_dir(&args.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(PlaygroundError::Runtime)?;
    runtime.block_on(serve_async(dir, SocketAddr::new(args.address, args.port)))
}

/// The directory, canonical, once it holds an index.html.
fn checked_dir(dir: &Path) -> Result<PathBuf, PlaygroundError> {
    if !dir.join("index.html").is_file() {
        return Err(PlaygroundError::MissingIndex {
            dir: dir.to_path_buf(),
        });
    }
    std::fs::canonicalize(dir).map_err(|source| PlaygroundError::Resolve {
        dir: dir.to_path_buf(),
        source,
    })
}

async fn serve_async(dir: PathBuf, addr: SocketAddr) -> Result<(), PlaygroundError> {
    // Installed before binding, so a signal that arrives once the address is printed is never
    // missed (and a failure to install shows before anything listens).
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| PlaygroundError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| PlaygroundError::Bind { addr, source })?;
    tracing::info!(dir = %dir.display(), address = %local, "serving the playground");
    {
        // Tests (and scripts) read this line to learn the port; a closed stdout does not stop
        // the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "playground: serving {} at http://{local}/",
            dir.display()
        );
        let _ = out.flush();
    }
    axum::serve(listener, router(&dir))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(PlaygroundError::Serve)
}

/// GET and HEAD of the files under `dir` (`/` is index.html; anything outside `dir` is a 404,
/// which ServeDir guarantees); every other method is a 405. Responses are gzipped when the
/// request accepts it (the default predicate compresses everything above 32 bytes except images,
/// gRPC and event streams, so `.wasm` and `.js` are), always revalidated, never sniffed.
fn router(dir: &Path) -> Router {
    Router::new()
        .fallback_service(get_service(ServeDir::new(dir)))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
fn shutdown_signal()
-> Result<impl std::future::Future<Output = ()> + Send + 'static, PlaygroundError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(PlaygroundError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(PlaygroundError::Signal)?;
        Ok(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("stopping the playground");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping the playground");
        })
    }
}
