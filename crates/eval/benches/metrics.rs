//! Speed of the metric kernels and of whole reports.
//!
//! `cargo bench -p cr-eval --bench metrics`. Data are built outside the timed closures.

use cr_eval::{compare, evaluate, roc_auc, EvalConfig, EvalInput, EvalRows, SelectionKind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, EvalRows, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    let mut truth = Vec::with_capacity(n);
    for _ in 0..n {
        let x: f64 = rng.random();
        truth.push(rng.random::<f64>() < 0.02 + 0.2 * x * x);
        a.push((x + 0.3 * rng.random::<f64>()) / 1.3);
        b.push((x + 0.2 * rng.random::<f64>()) / 1.2);
    }
    let mut rows = EvalRows::from_labels(vec![None; n]);
    for i in 0..n {
        let random = rng.random::<f64>() < 0.03;
        let rule = a[i] > 0.92;
        if random || rule {
            rows.inspected[i] = true;
            rows.label[i] = Some(truth[i]);
            rows.selection[i] = Some(if random {
                SelectionKind::Random
            } else {
                SelectionKind::Rule
            });
            rows.propensity[i] = Some(if rule { 1.0 } else { 0.03 });
            rows.revenue[i] = Some(if truth[i] {
                1000.0 * rng.random::<f64>()
            } else {
                0.0
            });
        }
    }
    (a, b, rows, truth)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("eval");
    g.sample_size(10);
    for n in [100_000usize, 1_000_000] {
        let (a, _b, rows, truth) = data(n, 1);
        g.bench_with_input(
            BenchmarkId::new("roc_auc_fully_labelled", n),
            &n,
            |bch, _| bch.iter(|| roc_auc(&a, &truth, None).unwrap()),
        );
        let full = EvalInput {
            model: "a".into(),
            scores: a.clone(),
            rows: EvalRows::fully_labelled(&truth),
            ..Default::default()
        };
        g.bench_with_input(
            BenchmarkId::new("evaluate_fully_labelled", n),
            &n,
            |bch, _| bch.iter(|| evaluate(&full, &EvalConfig::default()).unwrap()),
        );
        let partial = EvalInput {
            model: "a".into(),
            scores: a.clone(),
            rows,
            ..Default::default()
        };
        g.bench_with_input(
            BenchmarkId::new("evaluate_partially_labelled", n),
            &n,
            |bch, _| bch.iter(|| evaluate(&partial, &EvalConfig::default()).unwrap()),
        );
    }
    let (a, b, rows, _) = data(100_000, 2);
    let models = vec![("a".to_string(), a), ("b".to_string(), b)];
    let cfg = EvalConfig {
        bootstrap_reps: 200,
        ..EvalConfig::default()
    };
    g.bench_function("compare_100k_rows_200_reps", |bch| {
        bch.iter(|| compare(&models, &rows, &cfg).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
