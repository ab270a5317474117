//! Property tests (NFR-001): output does not depend on the order of input maps or of lists
//! whose entries carry ids. That no input panics the engine is `fuzz.rs`'s.

use llama_stack_config::{GenerateRequest, generate};
use proptest::prelude::*;
use serde_json::Value as Json;

/// (api field, short provider names valid for starter).
const APIS: [(&str, &[&str]); 4] = [
    ("inference", &["vllm", "ollama", "openai", "together"]),
    ("safety", &["llama-guard", "code-scanner"]),
    ("vectorIo", &["faiss", "sqlite-vec", "pgvector"]),
    (
        "toolRuntime",
        &["tavily-search", "brave-search", "file-search"],
    ),
];

/// (which short name, has secretRefs, settings).
type ProviderShape = (usize, bool, Vec<(String, i64)>);

#[derive(Debug, Clone)]
struct Shape {
    /// (API index, providers).
    providers: Vec<(usize, Vec<ProviderShape>)>,
    models: Vec<(String, usize)>,
    tools: Vec<usize>,
    shields: Vec<String>,
    seed: u64,
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    let provider = (
        0usize..3,
        any::<bool>(),
        prop::collection::vec(("[a-z]{1,6}", any::<i64>()), 0..4),
    );
    (
        prop::collection::vec((0usize..4, prop::collection::vec(provider, 1..4)), 1..4),
        prop::collection::vec(("[a-z]{1,6}", 0usize..3), 0..5),
        prop::collection::vec(0usize..3, 0..3),
        prop::collection::vec("[a-z]{1,6}", 0..3),
        any::<u64>(),
    )
        .prop_map(|(providers, models, tools, shields, seed)| Shape {
            providers,
            models,
            tools,
            shields,
            seed,
        })
}

/// Builds the spec as YAML text; `shuffle` permutes every list-with-ids and the key order of
/// every map, so the text differs but the meaning does not.
fn spec_yaml(s: &Shape, shuffle: Option<u64>) -> String {
    let mut rng = shuffle.unwrap_or(0) ^ s.seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut permute = |v: &mut Vec<String>| {
        if shuffle.is_some() {
            for i in (1..v.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
        }
    };
    let mut apis: Vec<usize> = s.providers.iter().map(|(a, _)| *a).collect();
    apis.sort();
    apis.dedup();
    let mut inference_ids = Vec::new();
    let mut sections = Vec::new();
    for a in &apis {
        let (field, names) = APIS[*a];
        let mut items = Vec::new();
        for (i, (which, with_key, settings)) in s
            .providers
            .iter()
            .filter(|(x, _)| x == a)
            .flat_map(|(_, l)| l)
            .enumerate()
        {
            let id = format!("{field}-{i}").to_lowercase();
            if *a == 0 {
                inference_ids.push(id.clone());
            }
            let mut keys = vec![
                format!("id: {id}"),
                format!("provider: {}", names[*which % names.len()]),
            ];
            if *with_key {
                keys.push("secretRefs: {b: {secretKeyRef: {name: s, key: b}}, a: {secretKeyRef: {name: s, key: a}}}".to_string());
            }
            if !settings.is_empty() {
                let mut kv: Vec<String> =
                    settings.iter().map(|(k, v)| format!("x{k}: {v}")).collect();
                kv.sort();
                kv.dedup_by(|x, y| x.split(':').next() == y.split(':').next());
                permute(&mut kv);
                keys.push(format!("settings: {{{}}}", kv.join(", ")));
            }
            permute(&mut keys);
            items.push(format!("{{{}}}", keys.join(", ")));
        }
        // FR-040 / FR-044: the first inference and safety providers are the defaults for models
        // and shields, so their list heads carry meaning; every other position may move.
        if *a <= 1 && !items.is_empty() {
            let head = items.remove(0);
            permute(&mut items);
            items.insert(0, head);
        } else {
            permute(&mut items);
        }
        sections.push(format!("{field}: [{}]", items.join(", ")));
    }
    permute(&mut sections);
    let mut models: Vec<String> = Vec::new();
    if !inference_ids.is_empty() {
        let mut seen = Vec::new();
        for (name, p) in &s.models {
            let pid = &inference_ids[p % inference_ids.len()];
            if seen.contains(&(name, pid)) {
                continue;
            }
            seen.push((name, pid));
            models.push(format!("{{name: {name}, provider: {pid}}}"));
        }
    }
    permute(&mut models);
    let mut shields: Vec<String> = s.shields.clone();
    shields.sort();
    shields.dedup();
    permute(&mut shields);
    let mut tools: Vec<String> = s
        .tools
        .iter()
        .map(|t| ["websearch", "file_search", "websearch"][*t].to_string())
        .collect();
    tools.dedup();
    permute(&mut tools);
    let mut top = vec![
        "distribution: {name: starter}".to_string(),
        format!("providers: {{{}}}", sections.join(", ")),
        format!(
            "resources: {{models: [{}], shields: [{}], tools: [{}]}}",
            models.join(", "),
            shields.join(", "),
            tools.join(", ")
        ),
    ];
    permute(&mut top);
    top.join("\n") + "\n"
}

fn run(text: &str) -> Result<llama_stack_config::Generated, Vec<llama_stack_config::FieldError>> {
    let spec: Json = serde_yaml::from_str(text).expect("generated YAML parses");
    generate(&GenerateRequest {
        name: Some("p".into()),
        spec,
        ..Default::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn output_ignores_input_order(shape in arb_shape(), perm in any::<u64>()) {
        let a = run(&spec_yaml(&shape, None));
        let b = run(&spec_yaml(&shape, Some(perm | 1)));
        match (a, b) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a.config_yaml, &b.config_yaml);
                prop_assert_eq!(&a.env, &b.env);
                prop_assert_eq!(&a.content_hash, &b.content_hash);
                prop_assert_eq!((a.provider_count, a.resource_count), (b.provider_count, b.resource_count));
            }
            (Err(a), Err(b)) => {
                // Paths carry list indices, which the permutation moves; the set of reasons and
                // messages without indices must agree.
                let strip = |e: &llama_stack_config::FieldError| e.reason;
                let mut ra: Vec<_> = a.iter().map(strip).collect();
                let mut rb: Vec<_> = b.iter().map(strip).collect();
                ra.sort();
                rb.sort();
                prop_assert_eq!(ra, rb);
            }
            (a, b) => prop_assert!(false, "outcome differs: {:?} vs {:?}", a.is_ok(), b.is_ok()),
        }
    }
}
