//! Generation speed: `cargo bench -p cr-synth --bench generate`.
//! Groups: `generate/{100k,1M}` (generation only) and `generate_write_csv/1M` (generation +
//! `cr_data::write_batch` to a temp CSV).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    let schema = cr_synth::schema().expect("bundled schema");
    let mut g = c.benchmark_group("generate");
    g.sample_size(10);
    for rows in [100_000usize, 1_000_000] {
        let cfg = cr_synth::SynthConfig {
            rows,
            seed: 42,
            ..Default::default()
        };
        g.bench_with_input(BenchmarkId::from_parameter(rows), &cfg, |b, cfg| {
            b.iter(|| cr_synth::generate(cfg, &schema).expect("generate"))
        });
    }
    g.finish();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("synth.csv");
    let mut g = c.benchmark_group("generate_write_csv");
    g.sample_size(10);
    let cfg = cr_synth::SynthConfig {
        rows: 1_000_000,
        seed: 42,
        ..Default::default()
    };
    g.bench_function("1000000", |b| {
        b.iter(|| {
            let batch = cr_synth::generate(&cfg, &schema).expect("generate");
            cr_data::write_batch(&path, &schema, &batch).expect("write");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
