//! `spec.storage` -> `storage.backends` (FR-050..053, D9). Absent storage leaves the base
//! untouched (FR-053); `kv` and `sql` are replaced independently (D6).

use super::Context;
use crate::error::Reason;
use crate::request::DerivedSecret;
use crate::spec::{KvStorage, KvType, SecretRef, SqlStorage, SqlType};
use crate::yaml::{self, key};
use serde_yaml::{Mapping, Value};

pub const KV_PASSWORD_ENV: &str = "LLSD_STORAGE_KV_PASSWORD";
/// Keys of the derived Secret and of D9's `secretRef` Secret, with the env var each feeds.
const SQL_FIELDS: [(&str, &str, &str); 5] = [
    // (config field, derived-secret key, CNPG/PGO secret key)
    ("host", "host", "host"),
    ("port", "port", "port"),
    ("db", "db", "dbname"),
    ("user", "user", "user"),
    ("password", "password", "password"),
];

pub fn apply(cx: &mut Context<'_>) {
    let Some(storage) = &cx.spec.storage else {
        return;
    };
    if let Some(kv) = &storage.kv {
        let backend = kv_backend(cx, kv);
        place(cx, "kv_", "kv_default", "metadata_store", backend);
    }
    if let Some(sql) = &storage.sql
        && let Some(backend) = sql_backend(cx, sql)
    {
        place(cx, "sql_", "sql_default", "inference_store", backend);
    }
}

/// Modern layout: replace the backends; legacy layout: the top-level store, whose `type`
/// has no `kv_`/`sql_` prefix.
fn place(
    cx: &mut Context<'_>,
    family: &str,
    fallback: &str,
    legacy_key: &str,
    mut backend: Mapping,
) {
    if !cx.legacy {
        replace_backends(cx, family, fallback, backend);
        return;
    }
    if let Some(t) = backend
        .get("type")
        .and_then(Value::as_str)
        .and_then(|t| t.strip_prefix(family))
        .map(str::to_string)
    {
        backend.insert(key("type"), key(&t));
    }
    cx.doc.insert(key(legacy_key), Value::Mapping(backend));
}

fn default_path(cx: &Context<'_>, file: &str) -> String {
    format!(
        "${{env.SQLITE_STORE_DIR:=~/.llama/distributions/{}}}/{file}",
        cx.distro
    )
}

/// The db_path of the first base backend of `family` that is sqlite, if any.
fn existing_sqlite_path(cx: &Context<'_>, sqlite_type: &str) -> Option<Value> {
    if cx.legacy {
        let store = if sqlite_type == "kv_sqlite" {
            "metadata_store"
        } else {
            "inference_store"
        };
        let s = cx.doc.get(store)?;
        return (yaml::str_of(s, "type") == Some("sqlite"))
            .then(|| s.get("db_path").cloned())
            .flatten();
    }
    let backends = cx.doc.get("storage")?.get("backends")?.as_mapping()?;
    backends
        .values()
        .find(|b| yaml::str_of(b, "type") == Some(sqlite_type))
        .and_then(|b| b.get("db_path"))
        .cloned()
}

fn kv_backend(cx: &mut Context<'_>, kv: &KvStorage) -> Mapping {
    let mut m = Mapping::new();
    match kv.kind {
        KvType::Sqlite => {
            for (set, field) in [
                (kv.endpoint.is_some(), "endpoint"),
                (kv.password.is_some(), "password"),
            ] {
                if set {
                    // FR-079c: a warning, not an error.
                    cx.d.warn(format!(
                        "spec.storage.kv.{field} is ignored: it only applies to kv type redis"
                    ));
                }
            }
            m.insert(key("type"), key("kv_sqlite"));
            let path = existing_sqlite_path(cx, "kv_sqlite").unwrap_or_else(|| {
                key(&default_path(
                    cx,
                    if cx.legacy {
                        "registry.db"
                    } else {
                        "kvstore.db"
                    },
                ))
            });
            m.insert(key("db_path"), path);
        }
        KvType::Redis => {
            m.insert(key("type"), key("kv_redis"));
            let Some(endpoint) = &kv.endpoint else {
                cx.d.error(
                    "spec.storage.kv.endpoint",
                    Reason::Required,
                    "endpoint is required for kv type redis (FR-079a), e.g. endpoint: redis://redis.my-ns.svc:6379",
                );
                return m;
            };
            let Some((host, port)) = parse_redis(endpoint) else {
                cx.d.error(
                    "spec.storage.kv.endpoint",
                    Reason::Invalid,
                    format!(
                        "\"{endpoint}\" is not a redis endpoint: write redis://HOST:PORT or HOST:PORT (llama-stack's \
                         kv_redis backend speaks plain redis://, not rediss://)"
                    ),
                );
                return m;
            };
            let host = match &kv.password {
                Some(r) => {
                    let v =
                        cx.secret_env(KV_PASSWORD_ENV.to_string(), r, "spec.storage.kv.password");
                    cx.d.warn(format!(
                        "spec.storage.kv.password: {} builds the redis URL from host and port and has no password \
                         field, so the password is passed inside the URL (redis://:PASSWORD@host); it must not \
                         contain '@', '/' or ':'",
                        cx.release
                    ));
                    format!(":{v}@{host}")
                }
                None => host,
            };
            m.insert(key("host"), key(&host));
            m.insert(key("port"), Value::Number(port.into()));
            if cx.catalog.is_some_and(|c| c.llama_stack_version == "0.7.3") {
                // Seen on the real server (tests/support/tests/node_samples.rs, full sample):
                // StackApp.__init__ runs stack.initialize() in a temporary event loop and
                // closes it, and kv_redis keeps the connection it opened there.
                cx.d.warn(
                    "spec.storage.kv: llama-stack 0.7.3's kv_redis keeps a Redis connection opened in a \
                     start-up event loop the server then closes, so the first registry read of each \
                     server worker process (e.g. GET /v1/models) fails once with HTTP 500 (\"Event \
                     loop is closed\" in the server's log) before it reconnects: clients should \
                     retry, or keep kv on sqlite",
                );
            }
        }
    }
    m
}

fn parse_redis(endpoint: &str) -> Option<(String, u16)> {
    let rest = match endpoint.split_once("://") {
        Some(("redis", r)) => r,
        Some(_) => return None,
        None => endpoint,
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '@']) || rest.is_empty() {
        return None;
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((rest.to_string(), 6379)),
    }
}

fn sql_backend(cx: &mut Context<'_>, sql: &SqlStorage) -> Option<Mapping> {
    let mut m = Mapping::new();
    match sql.kind {
        SqlType::Sqlite => {
            if sql.connection_string.is_some() || sql.secret_ref.is_some() {
                cx.d.warn("spec.storage.sql.connectionString is ignored: it only applies to sql type postgres");
            }
            m.insert(key("type"), key("sql_sqlite"));
            let path = existing_sqlite_path(cx, "sql_sqlite").unwrap_or_else(|| {
                key(&default_path(
                    cx,
                    if cx.legacy {
                        "inference_store.db"
                    } else {
                        "sql_store.db"
                    },
                ))
            });
            m.insert(key("db_path"), path);
        }
        SqlType::Postgres => {
            m.insert(key("type"), key("sql_postgres"));
            let refs: Vec<(String, SecretRef, String)> = match (
                &sql.connection_string,
                &sql.secret_ref,
            ) {
                (Some(_), Some(_)) => {
                    cx.d.error(
                        "spec.storage.sql",
                        Reason::Conflict,
                        "set either connectionString or secretRef for postgres, not both",
                    );
                    return None;
                }
                (None, None) => {
                    cx.d.error(
                        "spec.storage.sql.connectionString",
                        Reason::Required,
                        "connectionString is required for sql type postgres (FR-079b): \
                         connectionString: {secretKeyRef: {name: <secret>, key: <key>}} holding postgresql://user:pass@host:5432/db \
                         (or secretRef: {name: <secret>} with host, port, dbname, user, password keys)",
                    );
                    return None;
                }
                (Some(cs), None) => {
                    // D9: llama-stack has no connection-string field; the operator splits it into
                    // a derived Secret owned by the CR.
                    let Some(cr) = cx.cr_name else {
                        cx.d.error(
                            "metadata.name",
                            Reason::Required,
                            "metadata.name is required to name the Secret derived from spec.storage.sql.connectionString",
                        );
                        return None;
                    };
                    let derived = format!("{cr}-storage-sql");
                    cx.derived.push(DerivedSecret {
                        name: derived.clone(),
                        source_secret: cs.name.clone(),
                        source_key: cs.key.clone(),
                        format: "postgres-uri".to_string(),
                    });
                    SQL_FIELDS
                        .iter()
                        .map(|(f, k, _)| {
                            (
                                f.to_string(),
                                SecretRef {
                                    name: derived.clone(),
                                    key: k.to_string(),
                                },
                                "spec.storage.sql.connectionString".to_string(),
                            )
                        })
                        .collect()
                }
                (None, Some(secret)) => SQL_FIELDS
                    .iter()
                    .map(|(f, _, k)| {
                        (
                            f.to_string(),
                            SecretRef {
                                name: secret.clone(),
                                key: k.to_string(),
                            },
                            "spec.storage.sql.secretRef".to_string(),
                        )
                    })
                    .collect(),
            };
            for (field, r, path) in refs {
                let name = format!("LLSD_STORAGE_SQL_{}", field.to_ascii_uppercase());
                let v = cx.secret_env(name, &r, &path);
                m.insert(key(&field), key(&v));
            }
        }
    }
    Some(m)
}

/// Replaces every base backend of `family` (`kv_` / `sql_`) with `backend`, keeping the
/// names the stores and providers reference; adds `fallback` when the base had none.
fn replace_backends(cx: &mut Context<'_>, family: &str, fallback: &str, backend: Mapping) {
    let storage = yaml::ensure_map(&mut cx.doc, "storage");
    let backends = yaml::ensure_map(storage, "backends");
    let names: Vec<Value> = backends
        .iter()
        .filter(|(_, b)| yaml::str_of(b, "type").is_some_and(|t| t.starts_with(family)))
        .map(|(k, _)| k.clone())
        .collect();
    if names.is_empty() {
        backends.insert(key(fallback), Value::Mapping(backend));
    } else {
        for n in names {
            backends.insert(n, Value::Mapping(backend.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_endpoints() {
        assert_eq!(parse_redis("redis://r:6380"), Some(("r".into(), 6380)));
        assert_eq!(
            parse_redis("r.ns.svc:6379"),
            Some(("r.ns.svc".into(), 6379))
        );
        assert_eq!(parse_redis("r"), Some(("r".into(), 6379)));
        assert_eq!(parse_redis("rediss://r:6379"), None);
        assert_eq!(parse_redis("redis://u:p@r:6379"), None);
        assert_eq!(parse_redis("r:notaport"), None);
    }
}
