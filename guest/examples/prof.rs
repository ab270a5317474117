//! Profiling driver: runs the typical benchmark case in a loop (for perf/callgrind).
use llama_stack_config::{GenerateRequest, generate};
fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).expect("CR path")).expect("read");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
    let req: GenerateRequest = llama_stack_config::resource::request_from_object(doc).expect("cr");
    let n: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(generate(&req).ok());
    }
    eprintln!("{:?} per call", t.elapsed() / n);
}
