//! Transform speed of a fitted pipeline (fit on 200k synthetic rows): the parallel
//! `transform` of a 1M-row batch, and `transform_rows` on 100k rows in the 4096-row blocks
//! `cr_infer::DeclarationModel` scores (one thread: the per-block cost scoring pays).
//! `cargo bench -p cr-features --bench transform`

use std::hint::black_box;

use cr_data::{Batch, Schema};
use cr_features::{fit, PipelineConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SCHEMA: &str = r#"
name = "bench"
id = { column = "id" }
date = { column = "date" }
hs_code = { column = "hs", width = 6 }
categorical = [
  { column = "office", kind = "office" },
  { column = "importer", kind = "importer" },
  { column = "declarant", kind = "declarant" },
  { column = "origin", kind = "country_of_origin" },
  { column = "mode", kind = "transport_mode" },
]
numeric = [ { column = "value", kind = "value" }, { column = "mass", kind = "mass" }, { column = "qty", kind = "quantity" } ]
label = { column = "fraud" }
"#;

fn batch(schema: &Schema, n: usize, seed: u64, label_rate: f64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Batch::empty(schema, "bench");
    let card = [60usize, 50_000, 5_000, 120, 5];
    for r in 0..n {
        b.lines.push(r as u64 + 2);
        b.ids.push(format!("D{r}"));
        b.dates.push(rng.random_range(18_000..20_000));
        b.hs.push(rng.random_range(100..3_000u64) * 100 + rng.random_range(0..20u64));
        for (c, &k) in card.iter().enumerate() {
            b.categorical[c].push(format!("C{c}_{}", rng.random_range(0..k)));
        }
        b.numeric[0].push(rng.random_range(1.0f32..1e5));
        b.numeric[1].push(if rng.random_bool(0.02) {
            0.0
        } else {
            rng.random_range(0.1f32..1e3)
        });
        b.numeric[2].push(rng.random_range(1.0f32..100.0));
        b.label
            .push(rng.random_bool(label_rate).then(|| rng.random_bool(0.05)));
        b.revenue.push(None);
        b.inspected.push(false);
        b.selection.push(None);
        b.propensity.push(None);
    }
    b
}

fn bench(c: &mut Criterion) {
    let schema = match Schema::from_toml(SCHEMA) {
        Ok(s) => s,
        Err(e) => panic!("bench schema: {e}"),
    };
    let train = batch(&schema, 200_000, 1, 0.5);
    let score = batch(&schema, 1_000_000, 2, 0.0);
    let t = std::time::Instant::now();
    let (pipeline, _) = match fit(&schema, &train, &PipelineConfig::default()) {
        Ok(p) => p,
        Err(e) => panic!("fit: {e}"),
    };
    eprintln!(
        "fit on 200k rows: {:.2} s, {} features",
        t.elapsed().as_secs_f64(),
        pipeline.features.len()
    );
    let compiled = match pipeline.compile() {
        Ok(c) => c,
        Err(e) => panic!("compile: {e}"),
    };
    let mut g = c.benchmark_group("transform");
    g.sample_size(10);
    g.bench_function("1M rows, compiled", |b| {
        b.iter(|| black_box(compiled.transform(black_box(&score))))
    });
    let rows = batch(&schema, 100_000, 3, 0.0);
    let nf = compiled.feature_names().len();
    let mut buf = vec![0f32; 4096 * nf];
    g.bench_function("100k rows, transform_rows in 4096-row blocks", |b| {
        b.iter(|| {
            for start in (0..rows.len()).step_by(4096) {
                let n = 4096.min(rows.len() - start);
                if let Err(e) = compiled.transform_rows(black_box(&rows), start, &mut buf[..n * nf])
                {
                    panic!("transform_rows: {e}");
                }
            }
            black_box(&buf);
        })
    });
    g.bench_function("compile", |b| b.iter(|| black_box(pipeline.compile())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
