//! Tokenization and inference throughput on SST-2 dev (or the default corpus when the shared
//! data is absent), at batch sizes 1, 8, 32 and 64. Criterion prints sentences/s; nothing here
//! asserts a time.
//!
//! Run: `cargo bench --bench throughput` (after ./scripts/setup).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use robust::data::corpus::{Columns, Corpus};
use robust::model::{Classifier, InferenceOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Shared bench helper: the sentences every bench runs on.
fn sentences() -> (String, Vec<String>) {
    let dev = repo().join("../shared/data/sst2/dev.tsv");
    let path = if dev.is_file() {
        dev
    } else {
        repo().join("corpora/rt-snippets.tsv")
    };
    let corpus =
        Corpus::read(&path, &Columns::default()).expect("bench corpus (run ./scripts/setup)");
    (
        corpus.name(),
        corpus.rows.into_iter().map(|r| r.text).collect(),
    )
}

fn model(batch_size: usize) -> Classifier {
    let options = InferenceOptions {
        batch_size,
        cache_capacity: 0, // measure the model, not the cache
        ..InferenceOptions::default()
    };
    Classifier::load(&repo().join("models/sst2-minilm"), options).expect("default model loads")
}

fn tokenization(c: &mut Criterion) {
    let (name, texts) = sentences();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = model(32);
    let mut group = c.benchmark_group("tokenize");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function(BenchmarkId::new("encode_batch", &name), |b| {
        b.iter(|| model.encode(&texts).expect("encode"))
    });
    group.finish();
}

fn inference(c: &mut Criterion) {
    let (name, texts) = sentences();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("inference");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(texts.len() as u64));
    for batch in [1usize, 8, 32, 64] {
        let mut model = model(batch);
        group.bench_function(BenchmarkId::new(format!("{name}/batch"), batch), |b| {
            b.iter(|| model.predict(&texts).expect("predict"))
        });
    }
    group.finish();
}

criterion_group!(benches, tokenization, inference);
criterion_main!(benches);
