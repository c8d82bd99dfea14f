//! Reader / writer throughput on KCS-shaped rows (22 columns, ~100 bytes a row).
//!
//! Data: the shared KCS train file replicated with fresh ids (186,925 rows), written to a
//! temp dir outside the timed loop. Run: `cargo bench -p cr-data --bench read`.
//!
//! Medians measured on the shared 2-core dev box under load (load average ~3), one thread:
//! csv_read 0.58 M rows/s (0.93 M rows/s when the batches are dropped outside the timing),
//! parquet_read 0.61 M (0.88 M), csv_write 1.30 M, parquet_write 0.90 M, json 1.14 M records/s.
//! About half of the reading time is the allocator: the `Batch` keeps one `String` per
//! non-empty categorical cell (~14 a row here), and glibc's free/consolidate dominates.

use std::path::{Path, PathBuf};

use cr_data::{batch_from_json, open, read_all, write_batch, OnError, ReadOptions, Schema};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const COPIES: usize = 5;

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The KCS train file repeated `COPIES` times, ids made unique. Returns (path, rows).
fn make_csv(dir: &Path) -> (PathBuf, usize) {
    let src = manifest("../../../shared/data/customs-import-declarations/df_syn_train_eng.csv");
    let text = std::fs::read_to_string(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (shared KCS data needed)", src.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.collect();
    let mut out = String::with_capacity(text.len() * COPIES + 1);
    out.push_str(header);
    out.push('\n');
    for k in 0..COPIES {
        for l in &body {
            let (id, rest) = l.split_once(',').expect("row");
            out.push_str(&format!("{k}{id},{rest}\n"));
        }
    }
    let p = dir.join("kcs_x5.csv");
    std::fs::write(&p, out).expect("write");
    (p, body.len() * COPIES)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = Schema::from_path(&manifest("../../data/schemas/kcs.toml")).expect("kcs.toml");
    let (csv, rows) = make_csv(dir.path());
    let opts = ReadOptions {
        on_error: OnError::Skip,
        ..ReadOptions::default()
    };
    let (batch, rejects) = read_all(&csv, &schema, &opts).expect("read");
    assert!(rejects.is_empty() && batch.len() == rows);
    let pq = dir.path().join("kcs_x5.parquet");
    write_batch(&pq, &schema, &batch).expect("write parquet");

    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows as u64));
    let count = |p: &Path| {
        let mut n = 0;
        for chunk in open(p, &schema, &opts).expect("open") {
            n += chunk.expect("chunk").batch.len();
        }
        assert_eq!(n, rows);
    };
    // Including dropping the batches (the allocator's cost of freeing ~14 strings a row).
    g.bench_function("csv_read", |b| b.iter(|| count(&csv)));
    g.bench_function("parquet_read", |b| b.iter(|| count(&pq)));
    // Reading only: the chunks are dropped outside the timed section.
    let keep = |p: &Path| -> Vec<cr_data::ReadChunk> {
        open(p, &schema, &opts)
            .expect("open")
            .map(|c| c.expect("chunk"))
            .collect()
    };
    g.bench_function("csv_read_no_drop", |b| {
        b.iter_with_large_drop(|| keep(&csv))
    });
    g.bench_function("parquet_read_no_drop", |b| {
        b.iter_with_large_drop(|| keep(&pq))
    });
    let out_csv = dir.path().join("out.csv");
    let out_pq = dir.path().join("out.parquet");
    g.bench_function("csv_write", |b| {
        b.iter(|| write_batch(&out_csv, &schema, &batch).expect("write"))
    });
    g.bench_function("parquet_write", |b| {
        b.iter(|| write_batch(&out_pq, &schema, &batch).expect("write"))
    });

    // JSON path: 1,000 records as the service would receive them.
    let small = batch.take(&(0..1000).collect::<Vec<_>>());
    write_batch(&dir.path().join("small.csv"), &schema, &small).expect("write");
    let text = std::fs::read_to_string(dir.path().join("small.csv")).expect("read");
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let records: Vec<serde_json::Value> = rdr
        .records()
        .map(|r| {
            let r = r.expect("record");
            serde_json::Value::Object(
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|v| serde_json::Value::String(v.into())))
                    .collect(),
            )
        })
        .collect();
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("json_1000", |b| {
        b.iter(|| batch_from_json(&schema, &records, "request"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
