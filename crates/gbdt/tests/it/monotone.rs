//! Monotone constraints: sweeping a constrained feature over its range on random rows never
//! moves the prediction against the constraint (first principles: the definition of the
//! constraint), while the same data without the constraint does.

use cr_gbdt::{train, GbdtParams};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// x0: risk rises with x0 overall but dips in the middle (so an unconstrained model learns a
/// decrease); x1: lowers risk; x2: noise with 10 % missing.
fn data(n: usize, seed: u64) -> (Array2<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f32>::zeros((n, 3));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let a: f64 = rng.random_range(0.0..10.0);
        let b: f64 = rng.random_range(0.0..1.0);
        let c: f64 = rng.random_range(-1.0..1.0);
        let dip = if (4.0..6.0).contains(&a) { -2.0 } else { 0.0 };
        let z = -2.0 + 0.4 * a + dip - 1.5 * b + 0.3 * c;
        y.push(if rng.random::<f64>() < 1.0 / (1.0 + (-z).exp()) {
            1.0
        } else {
            0.0
        });
        x[[i, 0]] = a as f32;
        x[[i, 1]] = b as f32;
        x[[i, 2]] = if rng.random_bool(0.1) {
            f32::NAN
        } else {
            c as f32
        };
    }
    (x, y)
}

/// Largest drop (in the direction against `dir`) of the prediction when feature `f` sweeps a
/// grid of 101 values over [lo, hi] on each of `rows` random training rows.
fn worst_violation(model: &cr_gbdt::GbdtModel, x: &Array2<f32>, f: usize, dir: f64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let (lo, hi) = (-1.0f32, 11.0f32);
    let mut worst = 0.0f64;
    for _ in 0..200 {
        let r = rng.random_range(0..x.nrows());
        let mut grid = Array2::<f32>::zeros((101, x.ncols()));
        for (k, mut row) in grid.outer_iter_mut().enumerate() {
            row.assign(&x.row(r));
            row[f] = lo + (hi - lo) * k as f32 / 100.0;
        }
        let p = model.predict_raw(grid.view()).expect("predict");
        for w in p.windows(2) {
            worst = worst.max(dir * (w[0] - w[1]));
        }
    }
    worst
}

fn params() -> GbdtParams {
    GbdtParams::new()
        .num_trees(60)
        .num_leaves(15)
        .learning_rate(0.2)
        .min_data_in_leaf(10)
        .feature_fraction(0.8)
        .bagging_fraction(0.8)
        .bagging_freq(1)
        .seed(3)
}

#[test]
fn increasing_constraint_holds_on_sweeps() {
    let (x, y) = data(6000, 1);
    let free = train(&params(), x.view(), &y, None, None, None).expect("train");
    // The data has a dip: without the constraint the sweep must go down somewhere, or this
    // test could not fail.
    assert!(worst_violation(&free, &x, 0, 1.0) > 0.1);
    let model = train(
        &params().monotone_constraints(vec![1, 0, 0]),
        x.view(),
        &y,
        None,
        None,
        None,
    )
    .expect("train");
    assert_eq!(worst_violation(&model, &x, 0, 1.0), 0.0);
    // Still learns the feature: the top of the range scores above the bottom.
    let mut lo = x.clone();
    let mut hi = x.clone();
    lo.column_mut(0).fill(0.0);
    hi.column_mut(0).fill(10.0);
    let (pl, ph) = (
        model.predict_raw(lo.view()).expect("p"),
        model.predict_raw(hi.view()).expect("p"),
    );
    assert!(pl.iter().zip(&ph).all(|(a, b)| a < b));
}

#[test]
fn decreasing_constraint_holds_on_sweeps() {
    let (x, y) = data(6000, 2);
    // x1 lowers risk; constrain it to -1 and x0 to +1 together.
    let model = train(
        &params().monotone_constraints(vec![1, -1, 0]),
        x.view(),
        &y,
        None,
        None,
        None,
    )
    .expect("train");
    assert_eq!(worst_violation(&model, &x, 0, 1.0), 0.0);
    assert_eq!(worst_violation(&model, &x, 1, -1.0), 0.0);
}

#[test]
fn constraint_length_and_values_are_checked() {
    let (x, y) = data(200, 3);
    let short = train(
        &params().monotone_constraints(vec![1]),
        x.view(),
        &y,
        None,
        None,
        None,
    );
    assert!(short.is_err());
    assert!(params()
        .monotone_constraints(vec![2, 0, 0])
        .check()
        .is_err());
}
