//! Criterion benchmarks of the ingest hot path: parsing and building batches from generated
//! ActionTrail events (no I/O), so regressions in the decoder show up on their own.
//!
//! Run: `cargo bench -p trail-benches --bench ingest`. The side-by-side comparison with DuckDB
//! is `benches/ingest_vs_duckdb.py`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trail_ingest::batch::{BatchBuilder, NormalizeOptions, check};
use trail_ingest::event::parse_event;

fn sample_lines() -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = trail_gen::GenConfig {
        events: 20_000,
        days: 1,
        regions: 1,
        format: trail_gen::FileFormat::Ndjson,
        ..Default::default()
    };
    trail_gen::generate(&cfg, dir.path()).expect("generate");
    let mut lines = Vec::new();
    for entry in walk(dir.path()) {
        let (bytes, _) = trail_ingest::source::gunzip(&std::fs::read(entry).expect("read"));
        let text = String::from_utf8(bytes).expect("utf8");
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    lines
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn decode(c: &mut Criterion) {
    let lines = sample_lines();
    let bytes: usize = lines.iter().map(String::len).sum();
    let opts = NormalizeOptions::default();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse_event", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                n += usize::from(parse_event(l).is_ok());
            }
            n
        })
    });
    g.bench_function("parse_check_build", |b| {
        b.iter(|| {
            let mut builder = BatchBuilder::default();
            for l in &lines {
                if let Ok(e) = parse_event(l)
                    && let Ok(c) = check(&e, &opts)
                {
                    builder.append(&e, &c, l);
                }
            }
            builder.finish().0.num_rows()
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
