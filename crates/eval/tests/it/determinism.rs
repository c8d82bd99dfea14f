//! Results do not depend on the thread count; the seed matters.

use cr_eval::{compare, EvalConfig};

use crate::common::world;

#[test]
fn compare_is_identical_with_1_and_4_threads() {
    let w = world(4000, 5);
    let models = vec![
        ("A".to_string(), w.score_a.clone()),
        ("B".to_string(), w.score_b.clone()),
    ];
    let cfg = EvalConfig {
        bootstrap_reps: 120,
        ..EvalConfig::default()
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| compare(&models, &w.rows, &cfg).unwrap())
    };
    let one = run(1);
    let four = run(4);
    assert_eq!(one, four);
    assert_eq!(one.to_json(), four.to_json());
    let other = compare(
        &models,
        &w.rows,
        &EvalConfig {
            seed: 99,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(
        other.pairs[0].by_estimator[0].budgets[0].precision,
        one.pairs[0].by_estimator[0].budgets[0].precision
    );
    // Point estimates do not depend on the seed.
    assert_eq!(
        other.pairs[0].by_estimator[0].budgets[0]
            .precision
            .unwrap()
            .diff,
        one.pairs[0].by_estimator[0].budgets[0]
            .precision
            .unwrap()
            .diff
    );
}
