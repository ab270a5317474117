//! Issue 3: generate through the component (fresh instance per call, as the operator does)
//! against native, plus the cold start of the plugin (compile + instantiate-pre).

#[path = "../../guest/benches/specs.rs"]
mod specs;

use criterion::{Criterion, criterion_group, criterion_main};
use llama_stack_config::GenerateRequest;
use llama_stack_operator::plugin::{DEFAULT_PLUGIN, Host, Limits};
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let host = Host::new(Limits::default()).expect("host");
    let plugin = host.load_default().expect("plugin");
    for (name, spec) in specs::all() {
        let req = GenerateRequest {
            name: Some("bench".into()),
            spec,
            ..Default::default()
        };
        let native = llama_stack_config::generate(&req).expect("native generates");
        let wasm = plugin
            .generate(&host, &req)
            .expect("no trap")
            .expect("component generates");
        assert_eq!(native, wasm, "{name}: native and component must agree");
        c.bench_function(&format!("native/{name}"), |b| {
            b.iter(|| llama_stack_config::generate(black_box(&req)))
        });
        c.bench_function(&format!("component/{name}"), |b| {
            b.iter(|| plugin.generate(&host, black_box(&req)))
        });
    }
    // The fixed cost of a call: a fresh instance answering `info`.
    c.bench_function("component/instantiate+info", |b| {
        b.iter(|| host.load_info_only(black_box(&plugin)))
    });
    let mut group = c.benchmark_group("cold-start");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("compile+instantiate-pre", |b| {
        b.iter(|| host.load("bench", black_box(DEFAULT_PLUGIN)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
