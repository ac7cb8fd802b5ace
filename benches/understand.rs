//! The understanding step alone: mails per second on one core over the test
//! corpus (`tests/corpus/*.eml`), with the corpus's base context.
//!
//! `cargo bench --bench understand` (criterion). The throughput it prints is
//! per core: `understand` is a pure function on one thread. Under `cargo test`
//! criterion runs each benchmark once, so the bench cannot rot.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsvpd::understand::{ConferenceRef, Context, Language, WorkshopRef, understand};
use serde_json::Value;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// The conferences of `tests/corpus/context.json`.
fn conferences() -> Vec<ConferenceRef> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/context.json");
    let json: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = json["conferences"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|c| ConferenceRef {
            id: text(c, "id"),
            title: text(c, "title"),
            aliases: c["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            workshops: c["workshops"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| WorkshopRef {
                    id: text(w, "id"),
                    title: text(w, "title"),
                })
                .collect(),
            open: c["open"].as_bool().unwrap_or(true),
            address: c["address"].as_str().map(str::to_string),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mails = corpus();
    assert!(!mails.is_empty(), "tests/corpus holds no .eml");
    let conferences = conferences();
    let ctx = Context {
        conferences: &conferences,
        mailbox_address: "anmeldung@example.org",
        thread_conference: None,
        default_language: Language::De,
    };
    let mut group = c.benchmark_group("understand");
    // A pass over the corpus takes about half a second: ten samples are plenty.
    group.sample_size(10);
    group.throughput(Throughput::Elements(mails.len() as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for raw in &mails {
                std::hint::black_box(understand(std::hint::black_box(raw), &ctx));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
