//! Simulation: paired-bootstrap intervals of the precision@k and recall@k differences cover the
//! true difference about 95 % of the time.
//!
//! Model: s_A, s_B ~ U(0, 1) independent, P(y = 1) = c + a·s_A + b·s_B. The top share r by s_A
//! is {s_A ≥ 1 − r}, so the true precision is E[y | s_A ≥ 1 − r] = c + a(1 − r/2) + b/2 and
//! for B c + b(1 − r/2) + a/2: difference (B − A) = (b − a)(1 − r)/2. True recall is
//! r·precision / prevalence with prevalence c + (a + b)/2.

use cr_eval::{compare, Budget, Estimator, EvalConfig, EvalRows};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn paired_bootstrap_covers_true_difference() {
    let (a, b, c, r) = (0.30, 0.15, 0.05, 0.10);
    let true_prec_diff = (b - a) * (1.0 - r) / 2.0;
    let prev = c + (a + b) / 2.0;
    let (pa, pb) = (
        c + a * (1.0 - r / 2.0) + b / 2.0,
        c + b * (1.0 - r / 2.0) + a / 2.0,
    );
    let true_recall_diff = r * (pb - pa) / prev;
    let (datasets, n) = (200, 2000);
    let mut cover_p = 0;
    let mut cover_r = 0;
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for d in 0..datasets {
        let mut sa = Vec::with_capacity(n);
        let mut sb = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let (x1, x2): (f64, f64) = (rng.random(), rng.random());
            sa.push(x1);
            sb.push(x2);
            y.push(rng.random::<f64>() < c + a * x1 + b * x2);
        }
        let cfg = EvalConfig {
            budgets: vec![Budget::Rate(r)],
            estimators: vec![Estimator::Inspected],
            bootstrap_reps: 200,
            seed: 1000 + d as u64,
            gains_rates: Some(vec![0.1]),
            ..EvalConfig::default()
        };
        let rep = compare(
            &[("A".into(), sa), ("B".into(), sb)],
            &EvalRows::fully_labelled(&y),
            &cfg,
        )
        .unwrap();
        let bd = &rep.pairs[0]
            .estimator(Estimator::Inspected)
            .unwrap()
            .budgets[0];
        let p = bd.precision.unwrap();
        let rc = bd.recall.unwrap();
        cover_p += usize::from(p.ci_low <= true_prec_diff && true_prec_diff <= p.ci_high);
        cover_r += usize::from(rc.ci_low <= true_recall_diff && true_recall_diff <= rc.ci_high);
    }
    let (cp, cr) = (
        cover_p as f64 / datasets as f64,
        cover_r as f64 / datasets as f64,
    );
    assert!(
        (0.90..=0.99).contains(&cp),
        "precision@k difference coverage {cp}"
    );
    assert!(
        (0.90..=0.99).contains(&cr),
        "recall@k difference coverage {cr}"
    );
}
