//! Secret references -> env vars (FR-022, FR-032, D7, D9).

use super::Context;
use crate::error::Reason;
use crate::request::SecretEnv;
use crate::spec::SecretRef;

/// `LLSD_<ID>_<FIELD>`: uppercase, `-` -> `_` (FR-032).
pub fn env_name(id: &str, field: &str) -> String {
    format!("LLSD_{}_{}", normalise(id), normalise(field))
}

fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// The config value that reads the env var.
pub fn reference(name: &str) -> String {
    format!("${{env.{name}}}")
}

impl Context<'_> {
    /// Registers an env var fed by `r` and returns the config value that reads it. `path` is
    /// the CR field the reference came from, for collision messages.
    pub fn secret_env(&mut self, name: String, r: &SecretRef, path: &str) -> String {
        let value = reference(&name);
        self.env_paths.push((name.clone(), path.to_string()));
        self.env.push(SecretEnv {
            name,
            secret_name: r.name.clone(),
            secret_key: r.key.clone(),
        });
        value
    }
}

/// D7: two references must never produce one env var name (e.g. ids `a-b` and `a_b`).
pub fn check_collisions(cx: &mut Context<'_>) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (name, path) in std::mem::take(&mut cx.env_paths) {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            cx.d.error(
                &path,
                Reason::Duplicate,
                format!(
                    "this secret reference would use environment variable {name}, which {first} already uses: \
                     rename one of the provider ids so their upper-cased forms differ"
                ),
            );
        } else {
            seen.push((name, path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fr032_examples() {
        assert_eq!(
            env_name("vllm-primary", "API_KEY"),
            "LLSD_VLLM_PRIMARY_API_KEY"
        );
        assert_eq!(env_name("vllm-primary", "host"), "LLSD_VLLM_PRIMARY_HOST");
        assert_eq!(env_name("pgvector", "host"), "LLSD_PGVECTOR_HOST");
        assert_eq!(reference("LLSD_PGVECTOR_HOST"), "${env.LLSD_PGVECTOR_HOST}");
    }
}
