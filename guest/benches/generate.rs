//! Seed task 5.6 / NFR-002: generation time natively for three sizes.

mod specs;

use criterion::{Criterion, criterion_group, criterion_main};
use llama_stack_config::{GenerateRequest, generate};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    for (name, spec) in specs::all() {
        let req = GenerateRequest {
            name: Some("bench".into()),
            spec,
            ..Default::default()
        };
        if let Err(e) = generate(&req) {
            panic!("{name} spec must generate: {e:?}");
        }
        c.bench_function(&format!("generate/{name}"), |b| {
            b.iter(|| generate(black_box(&req)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
