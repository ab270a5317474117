//! The engine as a WASI component (issue 3): the golden corpus gives byte-identical output
//! natively and through the component; hostile guests are contained; a vendor plugin is
//! loaded from a file, pinned by sha256, and wins for what it serves (D18).

#[path = "../../guest/tests/common/mod.rs"]
mod common;
mod plugin_support;

use llama_stack_config::GenerateRequest;
use llama_stack_operator::plugin::{
    CodeCache, CodeSource, Host, Limits, PluginError, PluginRegistry, PluginSource,
};
use std::time::{Duration, Instant};

/// A host without a code cache: tests do not write into the user's cache.
fn host() -> Host {
    Host::with_cache(Limits::default(), None).expect("host starts")
}

#[test]
fn the_builtin_plugin_runs_the_code_precompiled_at_build_time() {
    // Issue 18: no cranelift at start-up; build.rs compiled it with the same engine settings.
    let plugin = host().load_default().expect("loads");
    assert_eq!(plugin.code_source(), CodeSource::Embedded);
    assert_eq!(
        plugin.digest(),
        llama_stack_operator::plugin::DEFAULT_PLUGIN_SHA256
    );
}

#[test]
fn a_vendor_plugin_is_compiled_once_per_digest_then_loaded_from_the_cache() {
    let bytes = std::fs::read(plugin_support::component("acme-llama-stack-plugin", None))
        .expect("read vendor plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let cached_host = || {
        let cache = CodeCache::open(&dir.path().join("code")).expect("cache dir");
        Host::with_cache(Limits::default(), Some(cache)).expect("host starts")
    };
    let request = GenerateRequest {
        name: Some("acme".into()),
        spec: serde_json::json!({"distribution": {"name": "acme-enterprise"}}),
        ..Default::default()
    };
    let run = |host: &Host| {
        let plugin = host.load("acme", &bytes).expect("acme loads");
        let out = plugin
            .generate(host, &request)
            .expect("no trap")
            .expect("valid request");
        (plugin.code_source(), out.config_yaml)
    };

    let first = cached_host();
    let (source, compiled_yaml) = run(&first);
    assert_eq!(source, CodeSource::Compiled);
    let digest = llama_stack_config::content_hash(&bytes);
    let file = first.cached_code_path(&digest).expect("has a cache");
    assert!(file.exists(), "{} written", file.display());

    let (source, cached_yaml) = run(&cached_host());
    assert_eq!(source, CodeSource::Cached, "the second host loads the code");
    assert_eq!(cached_yaml, compiled_yaml);

    // A damaged artifact is refused by wasmtime's checks, compiled again and replaced.
    std::fs::write(&file, b"\x7fELF not really").expect("damage the artifact");
    assert_eq!(run(&cached_host()).0, CodeSource::Compiled);
    assert_eq!(run(&cached_host()).0, CodeSource::Cached);
}

#[test]
fn golden_corpus_is_byte_identical_through_the_component() {
    let host = host();
    let plugin = host.load_default().expect("the embedded plugin loads");
    let cases = common::case_dirs();
    assert!(
        cases.len() >= 30,
        "expected the golden corpus, found {} cases",
        cases.len()
    );
    let mut mismatches = Vec::new();
    for dir in &cases {
        let native = common::render_case(dir, llama_stack_config::generate);
        let wasm = common::render_case(dir, |req| {
            plugin
                .generate(&host, req)
                .expect("the built-in plugin does not trap")
        });
        if native != wasm {
            mismatches.push(dir.display().to_string());
        }
        // And both equal the committed expectations.
        for (file, content) in &wasm {
            let on_disk = std::fs::read_to_string(dir.join(file)).ok();
            assert_eq!(
                on_disk.as_ref(),
                content.as_ref(),
                "{}/{file}",
                dir.display()
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "native and component differ for: {mismatches:?}"
    );
}

#[test]
fn plugin_info_lists_the_embedded_distributions() {
    let host = host();
    let plugin = host.load_default().expect("loads");
    let info = plugin.info().expect("info was read at load");
    let names: Vec<&str> = info.distributions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, llama_stack_config::catalog::distribution_names());
    assert_eq!(
        plugin.digest(),
        llama_stack_operator::plugin::DEFAULT_PLUGIN_SHA256
    );
}

fn hostile(feature: &str) -> (Host, llama_stack_operator::plugin::Plugin) {
    let path = plugin_support::component("hostile-plugin", Some(feature));
    let host = Host::with_cache(
        Limits {
            memory_bytes: 32 << 20,
            deadline: Duration::from_millis(500),
        },
        None,
    )
    .expect("host");
    let bytes = std::fs::read(&path).expect("read hostile plugin");
    let plugin = host
        .load(feature, &bytes)
        .expect("hostile plugins load: info behaves");
    (host, plugin)
}

fn any_request() -> GenerateRequest {
    GenerateRequest {
        spec: serde_json::json!({"distribution": {"name": "hostile"}}),
        ..Default::default()
    }
}

/// After any hostile call, the default plugin still works on the same host.
fn default_still_works(host: &Host) {
    let plugin = host
        .load_default()
        .expect("default plugin loads after a hostile call");
    let req = GenerateRequest {
        spec: serde_json::json!({"distribution": {"name": "starter"}}),
        ..Default::default()
    };
    let out = plugin
        .generate(host, &req)
        .expect("no trap")
        .expect("valid spec");
    assert!(out.config_yaml.starts_with("version: 2\n"));
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline() {
    let (host, plugin) = hostile("spin");
    let started = Instant::now();
    let err = plugin
        .generate(&host, &any_request())
        .expect_err("must not finish");
    let took = started.elapsed();
    eprintln!("endless loop stopped after {took:?} (deadline 500ms)");
    assert!(matches!(err, PluginError::Deadline { .. }), "{err}");
    assert!(took < Duration::from_secs(3), "stopping took {took:?}");
    default_still_works(&host);
}

#[test]
fn a_memory_bomb_traps_at_the_cap() {
    let (host, plugin) = hostile("allocate");
    let err = plugin
        .generate(&host, &any_request())
        .expect_err("must not finish");
    assert!(
        matches!(err, PluginError::MemoryCap { limit, .. } if limit == 32 << 20),
        "{err}"
    );
    default_still_works(&host);
}

#[test]
fn files_and_environment_are_out_of_reach() {
    // SAFETY-free: the host process really has HOME and /etc/hostname.
    assert!(std::env::var("HOME").is_ok() || std::path::Path::new("/etc/hostname").exists());
    let (host, plugin) = hostile("escape");
    let errors = plugin
        .generate(&host, &any_request())
        .expect("no trap")
        .expect_err("reports its attempts");
    let msg = &errors[0].message;
    assert!(msg.contains("file=Err("), "reading a file must fail: {msg}");
    assert!(
        msg.contains("env=Err(NotPresent)"),
        "the environment must be empty: {msg}"
    );
    assert!(msg.contains("readdir=Err("), "listing / must fail: {msg}");
    default_still_works(&host);
}

/// D10, FR-096: the content hash names the ConfigMap and decides rollouts, so a plugin that
/// misstates it is refused rather than believed.
#[test]
fn a_wrong_content_hash_is_refused() {
    let (host, plugin) = hostile("lie");
    let err = plugin
        .generate(&host, &any_request())
        .expect_err("must be refused");
    assert!(matches!(err, PluginError::Protocol { .. }), "{err}");
    assert!(
        err.to_string().contains("is not the sha256 of config-yaml"),
        "{err}"
    );
    default_still_works(&host);
}

#[test]
fn a_panic_becomes_an_error() {
    let (host, plugin) = hostile("panic");
    let err = plugin
        .generate(&host, &any_request())
        .expect_err("must trap");
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    assert!(
        err.to_string().contains("hostile plugin panics on purpose"),
        "the panic message reaches the error: {err}"
    );
    default_still_works(&host);
}

#[test]
fn vendor_plugin_is_loaded_from_a_file_and_wins_for_what_it_serves() {
    let path = plugin_support::component("acme-llama-stack-plugin", None);
    let bytes = std::fs::read(&path).expect("read vendor plugin");
    let sha = llama_stack_config::content_hash(&bytes);
    let host = host();
    let missing = std::env::temp_dir().join("no-such-plugin.wasm");
    let sources = vec![
        PluginSource {
            path: path.clone(),
            sha256: "0".repeat(64),
            ..Default::default()
        },
        PluginSource {
            path: missing.clone(),
            sha256: sha.clone(),
            ..Default::default()
        },
        PluginSource {
            path: path.clone(),
            sha256: format!("sha256:{sha}"),
            ..Default::default()
        },
    ];
    let (registry, failures) =
        PluginRegistry::load(&host, &sources).expect("the built-in plugin loads");
    assert_eq!(
        failures.len(),
        2,
        "wrong digest and missing file are refused: {failures:?}"
    );
    assert!(matches!(failures[0].error, PluginError::Digest { .. }));
    assert!(matches!(failures[1].error, PluginError::Read { .. }));

    let acme = GenerateRequest {
        name: Some("acme".into()),
        spec: serde_json::json!({"distribution": {"name": "acme-enterprise"},
            "providers": {"inference": [{"provider": "vllm", "endpoint": "https://llm.acme.internal/v1"}]}}),
        ..Default::default()
    };
    let plugin = registry.for_request(&acme);
    assert_eq!(plugin.info().map(|i| i.name.as_str()), Some("acme"));
    let out = plugin
        .generate(&host, &acme)
        .expect("no trap")
        .expect("valid");
    assert!(
        out.config_yaml.contains("verify: /etc/acme/ca-bundle.pem"),
        "the vendor rule ran:\n{}",
        out.config_yaml
    );
    assert!(out.config_yaml.contains("distro_name: acme-enterprise"));

    // By image repository too; everything else stays with the built-in plugin.
    let by_image = GenerateRequest {
        spec: serde_json::json!({"distribution": {"image": "quay.io/acme/llama-stack-enterprise:1.3.0"}}),
        ..Default::default()
    };
    assert_eq!(
        registry
            .for_request(&by_image)
            .info()
            .map(|i| i.name.as_str()),
        Some("acme")
    );
    let starter = GenerateRequest {
        spec: serde_json::json!({"distribution": {"name": "starter"}}),
        ..Default::default()
    };
    assert_eq!(registry.for_request(&starter).name(), "builtin");
    // The built-in plugin does not know ACME's distribution.
    let err = registry
        .builtin()
        .generate(&host, &acme)
        .expect("no trap")
        .expect_err("unknown to the built-in plugin");
    assert!(
        err[0]
            .message
            .starts_with("Unknown distribution \"acme-enterprise\"")
    );
}

#[test]
fn a_request_that_is_not_json_is_a_field_error_not_a_trap() {
    let host = host();
    let plugin = host.load_default().expect("loads");
    // The host always sends JSON; this checks the guest's own guard through validate.
    let req = GenerateRequest {
        spec: serde_json::json!("not an object"),
        ..Default::default()
    };
    let errors = plugin.validate(&host, &req).expect("no trap");
    assert_eq!(errors[0].path, "spec");
}

/// The plugin's allocator never reuses memory within a call (one_shot_alloc.rs): a large CR
/// must still fit well inside the default cap, and give what native gives.
#[test]
fn a_large_spec_fits_in_a_quarter_of_the_memory_cap() {
    let inference: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            serde_json::json!({"id": format!("vllm-{i}"), "provider": "vllm",
            "endpoint": format!("http://v{i}:8000/v1"),
            "apiKey": {"secretKeyRef": {"name": format!("s{i}"), "key": "k"}}})
        })
        .collect();
    let models: Vec<serde_json::Value> = (0..1000)
        .map(|i| serde_json::json!({"name": format!("model-{i}"), "provider": format!("vllm-{}", i % 20)}))
        .collect();
    let req = GenerateRequest {
        name: Some("large".into()),
        spec: serde_json::json!({"distribution": {"name": "starter"},
            "providers": {"inference": inference},
            "resources": {"models": models}}),
        ..Default::default()
    };
    let native = llama_stack_config::generate(&req).expect("native generates");
    let cap = Limits::default().memory_bytes / 4;
    let host = Host::with_cache(
        Limits {
            memory_bytes: cap,
            ..Limits::default()
        },
        None,
    )
    .expect("host starts");
    let plugin = host.load_default().expect("loads");
    let wasm = plugin
        .generate(&host, &req)
        .unwrap_or_else(|e| panic!("a 1000-model spec must fit in {cap} bytes: {e}"))
        .expect("generates");
    assert_eq!(native, wasm);
    assert!(wasm.config_yaml.contains("model_id: model-999"));
}

/// FR-080..083 through the component the webhook will call: the same result as the native
/// engine, both directions; a vendor plugin refuses (conversion is always the built-in's).
#[test]
fn conversion_runs_in_the_builtin_component_and_nowhere_else() {
    use llama_stack_config::convert::{Version, convert};
    use llama_stack_operator::plugin::ConvertRefusal;
    let host = host();
    let plugin = host.load_default().expect("loads");
    let v1 = serde_json::json!({"apiVersion": "llamastack.io/v1alpha1", "kind": "LlamaStackDistribution",
        "metadata": {"name": "old"},
        "spec": {"replicas": 2, "server": {"distribution": {"name": "starter"},
            "containerSpec": {"name": "custom", "port": 8080}, "userConfig": {"configMapName": "cfg"}},
            "network": {"exposeRoute": true}}});
    let hub = plugin
        .convert(&host, &v1, "v1alpha2")
        .expect("no trap")
        .expect("converts");
    assert_eq!(
        hub,
        convert(&v1, Version::V1alpha2).expect("native converts")
    );
    assert_eq!(hub["spec"]["networking"]["port"], 8080);
    let back = plugin
        .convert(&host, &hub, "v1alpha1")
        .expect("no trap")
        .expect("converts");
    assert_eq!(back, v1);
    match plugin.convert(&host, &serde_json::json!({"kind": "Pod"}), "v1alpha2") {
        Ok(Err(ConvertRefusal::Invalid(errors))) => assert_eq!(errors[0].path, "kind"),
        other => panic!("a Pod is refused with a field error: {other:?}"),
    }
    match plugin.convert(&host, &v1, "v2") {
        Ok(Err(ConvertRefusal::Invalid(errors))) => assert_eq!(errors[0].path, "toVersion"),
        other => panic!("an unknown version is refused: {other:?}"),
    }
    let acme = plugin_support::component("acme-llama-stack-plugin", None);
    let vendor = host
        .load("acme", &std::fs::read(acme).expect("read"))
        .expect("loads");
    assert!(matches!(
        vendor.convert(&host, &v1, "v1alpha2"),
        Ok(Err(ConvertRefusal::Unsupported(_)))
    ));
}
