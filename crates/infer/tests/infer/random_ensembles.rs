//! Property: the native engine gives ONNX Runtime's scores on random ensembles built with
//! the cr-onnx builder (all split modes, missing-value directions, binary-classifier and
//! regressor heads, post transforms, aggregate functions), on inputs that hit thresholds.

use cr_infer::{Engine, LoadOptions, Model};
use proptest::prelude::*;
use rand::SeedableRng;

use crate::common::max_abs_diff;
use crate::gen::{ensemble_model, inputs, Config, Head};

const MODES_FAST: [&str; 4] = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT"];
const MODES_ALL: [&str; 6] = [
    "BRANCH_LEQ",
    "BRANCH_LT",
    "BRANCH_GTE",
    "BRANCH_GT",
    "BRANCH_EQ",
    "BRANCH_NEQ",
];

/// Native and ORT scores of one random model; returns max |diff|.
pub fn native_vs_ort(seed: u64, cfg: &Config, n_rows: usize) -> f64 {
    let model = ensemble_model(seed, cfg);
    let native = Model::from_proto(
        &model,
        &LoadOptions {
            engine: Engine::Native,
            threads: 1,
        },
    )
    .expect("native compiles");
    let ort = Model::from_proto(
        &model,
        &LoadOptions {
            engine: Engine::Ort,
            threads: 1,
        },
    )
    .expect("ort session");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let x = inputs(&mut rng, n_rows, cfg.n_features);
    let a = native.score_matrix(&x, n_rows).expect("native scores");
    let b = ort.score_matrix(&x, n_rows).expect("ort scores");
    max_abs_diff(&a, &b)
}

fn head() -> impl Strategy<Value = Head> {
    prop_oneof![
        (0u8..3, 0usize..3, any::<bool>()).prop_map(|(classes, n_base, positive)| Head::Binary {
            classes,
            n_base,
            positive
        }),
        (1usize..3, 0usize..2).prop_map(|(n_targets, n_base)| Head::Regressor {
            n_targets,
            n_base: if n_base == 1 { n_targets } else { 0 }
        }),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        head(),
        1usize..12,
        1usize..7,
        1usize..6,
        any::<bool>(),
        0usize..4,
        prop::sample::select(vec!["NONE", "LOGISTIC", "SOFTMAX", "PROBIT"]),
        prop::sample::select(vec!["SUM", "AVERAGE", "MIN", "MAX"]),
        prop::sample::select(vec![0.0f64, 0.5, 1.0]),
    )
        .prop_map(
            |(
                head,
                n_trees,
                max_depth,
                n_features,
                all_modes,
                one_mode,
                post,
                aggregate,
                missing_prob,
            )| {
                let modes = if one_mode < 4 && !all_modes {
                    vec![MODES_FAST[one_mode]] // ORT's same-mode loop
                } else if all_modes {
                    MODES_ALL.to_vec()
                } else {
                    MODES_FAST.to_vec()
                };
                // PROBIT on a one-column binary output leaves ORT's column 1 undefined (refused natively).
                let post = match head {
                    Head::Binary {
                        classes: 0, n_base, ..
                    } if post == "PROBIT" && n_base != 2 => "NONE",
                    _ => post,
                };
                Config {
                    head,
                    n_trees,
                    max_depth,
                    n_features,
                    modes,
                    post,
                    aggregate,
                    missing_prob,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96)
    ))]
    #[test]
    fn native_equals_ort_on_random_ensembles(seed in any::<u64>(), cfg in config(), n_rows in 1usize..200) {
        let d = native_vs_ort(seed, &cfg, n_rows);
        prop_assert!(d <= 1e-6, "max |native - ort| = {d} for {cfg:?}");
    }
}
