//! `llama-stack-operator playground`: serves a directory of static files on loopback with the
//! content types, compression and headers the browser playground needs, and nothing outside it.
//! Spoken to with plain HTTP/1.1 over a TcpStream (`Connection: close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SECRET: &str = "the content of a file outside the served directory";

/// A temp dir with `secret` and `Cargo.toml` at the top and the served `dist/` below them.
struct Site {
    root: tempfile::TempDir,
    wasm: Vec<u8>,
}

impl Site {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let dist = root.path().join("dist");
        std::fs::create_dir(&dist).expect("dist");
        std::fs::write(root.path().join("secret"), SECRET).expect("secret");
        std::fs::write(root.path().join("Cargo.toml"), SECRET).expect("Cargo.toml");
        std::fs::write(dist.join("index.html"), INDEX).expect("index.html");
        std::fs::write(dist.join("app.js"), "export const answer = 42;\n").expect("app.js");
        // 64 KiB of a repeating pattern: compresses well.
        let wasm: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        std::fs::write(dist.join("x.wasm"), &wasm).expect("x.wasm");
        Site { root, wasm }
    }

    fn dist(&self) -> PathBuf {
        self.root.path().join("dist")
    }
}

const INDEX: &str =
    "<!doctype html>\n<title>playground</title>\n<p>The playground runs in the browser.</p>\n";

/// The running server; killed when dropped, so a failing assertion does not leak it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .args(["playground", "--port", "0", "--dir"])
        .arg(dir)
        .env_remove("LLSD_PLAYGROUND_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    // From here on the Drop guard owns the child.
    let mut server = Server { child, port: 0 };
    assert!(matches!(read, Ok(n) if n > 0), "no start line: {read:?}");
    let canonical = std::fs::canonicalize(dir).expect("canonical dir");
    let prefix = format!(
        "playground: serving {} at http://127.0.0.1:",
        canonical.display()
    );
    let port = line
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected start line: {line:?}"));
    assert_ne!(port, 0);
    server.port = port;
    server
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut req =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("receive");
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head: bool) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head_text = std::str::from_utf8(&raw[..end]).expect("ASCII headers");
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head {
        assert!(rest.is_empty(), "HEAD response with a body");
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = std::str::from_utf8(&raw[..eol]).expect("chunk size");
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).expect("hex chunk size");
        raw = &raw[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n", "chunk terminator");
        raw = &raw[size + 2..];
    }
}

fn assert_common_headers(res: &Response) {
    assert_eq!(
        res.header("cache-control"),
        Some("no-cache"),
        "{:?}",
        res.headers
    );
    assert_eq!(
        res.header("x-content-type-options"),
        Some("nosniff"),
        "{:?}",
        res.headers
    );
}

#[test]
fn the_index_is_served_as_html_with_the_required_headers() {
    let site = Site::new();
    let server = start(&site.dist());
    let res = request(server.port, "GET", "/", &[]);
    assert_eq!(res.status, 200);
    let content_type = res.header("content-type").expect("content-type");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(res.text(), INDEX);
    assert_common_headers(&res);
    // Revalidation instead of caching: the validators are there.
    assert!(res.header("last-modified").is_some(), "{:?}", res.headers);
    assert!(res.header("etag").is_some(), "{:?}", res.headers);

    let res = request(server.port, "GET", "/index.html", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), INDEX);
}

#[test]
fn wasm_is_application_wasm_and_gzipped_when_the_client_accepts_it() {
    let site = Site::new();
    let server = start(&site.dist());

    let plain = request(server.port, "GET", "/x.wasm", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("application/wasm"));
    assert!(
        matches!(plain.header("content-encoding"), None | Some("identity")),
        "{:?}",
        plain.headers
    );
    assert_eq!(plain.body, site.wasm);
    assert_common_headers(&plain);

    let gzipped = request(
        server.port,
        "GET",
        "/x.wasm",
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-type"), Some("application/wasm"));
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_common_headers(&gzipped);
    assert!(
        gzipped.body.len() < site.wasm.len() / 4,
        "{} bytes transferred for {}",
        gzipped.body.len(),
        site.wasm.len()
    );
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_end(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, site.wasm);
}

#[test]
fn javascript_has_a_javascript_content_type() {
    let site = Site::new();
    let server = start(&site.dist());
    let res = request(server.port, "GET", "/app.js", &[]);
    assert_eq!(res.status, 200);
    let content_type = res.header("content-type").expect("content-type");
    assert!(
        content_type.starts_with("text/javascript")
            || content_type.starts_with("application/javascript"),
        "{content_type}"
    );
    assert_eq!(res.text(), "export const answer = 42;\n");
    assert_common_headers(&res);
}

#[test]
fn missing_files_are_404_and_nothing_outside_the_dir_is_served() {
    let site = Site::new();
    let server = start(&site.dist());
    let res = request(server.port, "GET", "/no-such-file.js", &[]);
    assert_eq!(res.status, 404);
    assert_common_headers(&res);
    for target in [
        "/../Cargo.toml",
        "/../secret",
        "/%2e%2e/secret",
        "/%2e%2e%2fsecret",
        "/..%2fsecret",
        "/..%5csecret",
        "/./../secret",
    ] {
        let res = request(server.port, "GET", target, &[]);
        assert!(
            res.status == 404 || res.status == 400,
            "{target}: {}",
            res.status
        );
        assert!(!res.text().contains(SECRET), "{target} leaked the file");
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    let site = Site::new();
    let server = start(&site.dist());
    let head = request(server.port, "HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert_common_headers(&head);
    for (method, target) in [("POST", "/"), ("PUT", "/x.wasm"), ("DELETE", "/app.js")] {
        let res = request(server.port, method, target, &[]);
        assert_eq!(res.status, 405, "{method} {target}");
        assert_common_headers(&res);
    }
}

#[test]
fn a_dir_without_index_html_exits_1() {
    let site = Site::new();
    std::fs::remove_file(site.dist().join("index.html")).expect("remove index.html");
    let out = Command::new(env!("CARGO_BIN_EXE_llama-stack-operator"))
        .args(["playground", "--port", "0", "--dir"])
        .arg(site.dist())
        .env_remove("LLSD_PLAYGROUND_DIR")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("index.html not found"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// SIGTERM (what `kill` and Kubernetes send) stops it gracefully, with exit code 0.
#[cfg(unix)]
#[test]
fn sigterm_stops_it_with_exit_code_0() {
    let site = Site::new();
    let mut server = start(&site.dist());
    assert_eq!(request(server.port, "GET", "/", &[]).status, 200);
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
}
