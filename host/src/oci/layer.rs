//! Finding files in one image layer (a tar stream, gzip-compressed or not) without unpacking
//! it: the wanted files are read into memory (bounded), the rest is skipped. Whiteouts are
//! reported so a caller walking layers top-down knows when a lower layer's copy was deleted.
//! Blocking: runs on a blocking thread over the network stream.

use flate2::read::GzDecoder;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    /// The layer media types we read; `None` for ones we cannot (zstd, foreign layers).
    pub fn of(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Compression::Gzip),
            _ => None,
        }
    }
}

/// What one layer says about the paths asked for.
#[derive(Debug, Default)]
pub struct Scan {
    /// Content of the `read` paths present in this layer.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files under the listed directory present in this layer.
    pub listed: BTreeSet<String>,
    /// Whiteout targets (files, or directories for an opaque whiteout) that concern the read
    /// paths or the listed directory: this layer deletes them for the layers below.
    pub deleted: BTreeSet<String>,
}

/// A wanted file is larger than the limit.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path} is {size} bytes, more than the {limit} bytes read from a layer")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `/a/./b` and `./a/b` -> `a/b`.
pub fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `path` is `target` or below it (`""` is the root).
pub fn covers(target: &str, path: &str) -> bool {
    target.is_empty() || path == target || path.starts_with(&format!("{target}/"))
}

/// Reads the tar stream to its end (so the caller's digest check sees every byte), keeping
/// the `read` files (each at most `limit` bytes), listing the files under `list_under`, and
/// noting the whiteouts that concern either.
pub fn scan<R: Read>(
    reader: R,
    compression: Compression,
    read: &[&str],
    list_under: Option<&str>,
    limit: u64,
) -> Result<Scan, ScanError> {
    let mut source: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(GzDecoder::new(reader)),
    };
    let read: Vec<String> = read.iter().map(|p| normalize(p)).collect();
    let list_under = list_under.map(normalize);
    let mut out = Scan::default();
    {
        let mut archive = tar::Archive::new(&mut source);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = normalize(&entry.path()?.to_string_lossy());
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if let Some(hidden) = base.strip_prefix(".wh.") {
                // `.wh..wh..opq` hides all of `dir` below this layer; `.wh.x` hides `dir/x`.
                let gone = if hidden == ".wh..opq" {
                    dir.clone()
                } else if dir.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{dir}/{hidden}")
                };
                let concerns_read = read.iter().any(|p| covers(&gone, p));
                let concerns_list = list_under
                    .as_deref()
                    .is_some_and(|l| covers(&gone, l) || covers(l, &gone));
                if concerns_read || concerns_list {
                    out.deleted.insert(gone);
                }
                continue;
            }
            if read.contains(&path) && entry.header().entry_type().is_file() {
                let size = entry.size();
                if size > limit {
                    return Err(ScanError::TooLarge { path, size, limit });
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.by_ref().take(limit).read_to_end(&mut buf)?;
                out.files.insert(path.clone(), buf);
            }
            if let Some(l) = &list_under
                && covers(l, &path)
                && entry.header().entry_type().is_file()
            {
                out.listed.insert(path);
            }
        }
    }
    // The tar end marker can come before the end of the stream; the digest covers it all.
    io::copy(&mut source, &mut io::sink())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("gz");
        e.finish().expect("gz")
    }

    #[test]
    fn finds_files_in_plain_and_gzip_layers() {
        let t = tar(&[
            ("./app/config.yaml", b"version: 2\n"),
            ("app/other", b"x"),
            ("lls-provider/packages/a.whl", b"wheel"),
        ]);
        for (bytes, c) in [(t.clone(), Compression::None), (gz(&t), Compression::Gzip)] {
            let s = scan(
                &bytes[..],
                c,
                &["/app/config.yaml"],
                Some("/lls-provider"),
                1024,
            )
            .expect("scan");
            assert_eq!(s.files["app/config.yaml"], b"version: 2\n");
            assert_eq!(
                s.listed.iter().collect::<Vec<_>>(),
                ["lls-provider/packages/a.whl"]
            );
        }
    }

    #[test]
    fn whiteouts_and_opaque_dirs_are_reported() {
        let t = tar(&[
            ("app/.wh.config.yaml", b""),
            ("lls-provider/.wh..wh..opq", b""),
        ]);
        let s = scan(
            &t[..],
            Compression::None,
            &["app/config.yaml"],
            Some("lls-provider"),
            1024,
        )
        .expect("scan");
        assert!(s.deleted.contains("app/config.yaml"));
        assert!(s.deleted.contains("lls-provider"), "{:?}", s.deleted);
        assert!(covers(
            "lls-provider",
            "lls-provider/lls-provider-spec.yaml"
        ));
        assert!(!covers("lls-provider", "lls-provider-x/y"));
        assert!(s.files.is_empty());
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let t = tar(&[("big", &[0u8; 100])]);
        let e = scan(&t[..], Compression::None, &["big"], None, 10).expect_err("too large");
        assert!(matches!(e, ScanError::TooLarge { size: 100, .. }), "{e}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(
            scan(
                &b"not a gzip stream"[..],
                Compression::Gzip,
                &["x"],
                None,
                10
            )
            .is_err()
        );
        assert_eq!(
            Compression::of("application/vnd.oci.image.layer.v1.tar+zstd"),
            None
        );
    }
}
