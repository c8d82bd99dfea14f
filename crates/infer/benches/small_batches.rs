//! Per-call cost of the native tree scorer for small batches (a 100-tree x 63-leaf binary
//! classifier, see `common`): `predict_column` on 1, 16, 512 and 4096 rows, one thread, the
//! kernel picked at run time (`CR_INFER_KERNEL=scalar|bitvec|avx2|avx512` overrides). The
//! 1-row case is what the HTTP service pays per `/v1/score` request.
//! `cargo bench -p cr-infer --bench small_batches`

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn small_batches(c: &mut Criterion) {
    let model = common::model(7);
    let mut g = c.benchmark_group("predict_column");
    for n in [1usize, 16, 512, 4096] {
        let x = common::rows(n, 11);
        let mut out = vec![0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let r = model.predict_column(black_box(&x), common::N_FEATURES, n, 1, &mut out);
                black_box((r.is_ok(), &out));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, small_batches);
criterion_main!(benches);
