//! TreeSHAP against first principles: the Shapley values of the path-dependent game,
//! computed by brute force over all 2^6 feature subsets on the ONNX attributes (the spec's
//! own nodes, walked by the first-principles router of `tree::tests`), for random ensembles
//! with `<`/`<=`/`>`/`>=`/`==`/`!=` splits, NaN / ±inf / ±0 thresholds, missing directions, and
//! rows at thresholds, their f32 neighbours, NaN and ±inf. Covers come from routing a
//! reference sample (first-principles counts in the reference, the engine's routing in the
//! explainer) and from `nodes_hitrates`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Explainer, Reference};
use crate::plan::{Core, NativeScorer, Prep};
use crate::tree::compile::compile;
use crate::tree::spec::{Aggregate, EnsembleSpec, Mode, RawNode};
use crate::tree::tests::{rows, spec, NF};

const W: usize = NF + 1; // row width of `rows`

fn find(s: &EnsembleSpec, t: i64, id: i64) -> RawNode {
    *s.nodes
        .iter()
        .find(|n| n.tree == t && n.id == id)
        .expect("node")
}

fn goes_true(n: &RawNode, v: f32) -> bool {
    if v.is_nan() && n.missing_true {
        return true;
    }
    let th = n.value;
    match n.mode {
        Mode::Leq => v <= th,
        Mode::Lt => v < th,
        Mode::Gte => v >= th,
        Mode::Gt => v > th,
        Mode::Eq => v == th,
        Mode::Neq => v != th,
        Mode::Leaf => unreachable!(),
    }
}

fn leaf_weight(s: &EnsembleSpec, t: i64, id: i64) -> f64 {
    f64::from(
        s.targets
            .iter()
            .find(|w| w.tree == t && w.node == id)
            .expect("weight")
            .weight,
    )
}

/// Reference-sample counts per (tree, node id), by the first-principles walk.
fn counts(
    s: &EnsembleSpec,
    n_trees: usize,
    x: &[f32],
) -> std::collections::BTreeMap<(i64, i64), f64> {
    let mut c = std::collections::BTreeMap::new();
    for row in x.chunks_exact(W) {
        for t in 0..n_trees as i64 {
            let mut n = find(s, t, 0);
            loop {
                *c.entry((t, n.id)).or_insert(0.0) += 1.0;
                if n.mode == Mode::Leaf {
                    break;
                }
                let v = row[n.feature as usize];
                n = find(
                    s,
                    t,
                    if goes_true(&n, v) {
                        n.true_id
                    } else {
                        n.false_id
                    },
                );
            }
        }
    }
    c
}

type Counts = std::collections::BTreeMap<(i64, i64), f64>;

/// v(S): expected output of tree `t` with the features in `mask` known.
fn game(s: &EnsembleSpec, c: &Counts, t: i64, id: i64, row: &[f32], mask: u32) -> f64 {
    let n = find(s, t, id);
    if n.mode == Mode::Leaf {
        return leaf_weight(s, t, id);
    }
    if mask & (1 << n.feature) != 0 {
        let next = if goes_true(&n, row[n.feature as usize]) {
            n.true_id
        } else {
            n.false_id
        };
        return game(s, c, t, next, row, mask);
    }
    let cnt = |i: i64| c.get(&(t, i)).copied().unwrap_or(0.0);
    let w = cnt(id);
    let ft = if w > 0.0 { cnt(n.true_id) / w } else { 0.5 };
    ft * game(s, c, t, n.true_id, row, mask) + (1.0 - ft) * game(s, c, t, n.false_id, row, mask)
}

/// Exact Shapley values of the summed game (features 0..NF).
fn brute(s: &EnsembleSpec, c: &Counts, n_trees: usize, row: &[f32]) -> (f64, Vec<f64>) {
    let m = NF;
    let v = |mask: u32| -> f64 {
        (0..n_trees as i64)
            .map(|t| game(s, c, t, 0, row, mask))
            .sum()
    };
    let vals: Vec<f64> = (0..1u32 << m).map(v).collect();
    let fact = |k: usize| -> f64 { (1..=k).map(|i| i as f64).product() };
    let mut phi = vec![0.0; W];
    for (i, p) in phi.iter_mut().enumerate().take(m) {
        for mask in 0..1u32 << m {
            if mask & (1 << i) != 0 {
                continue;
            }
            let k = mask.count_ones() as usize;
            let wgt = fact(k) * fact(m - k - 1) / fact(m);
            *p += wgt * (vals[(mask | (1 << i)) as usize] - vals[mask as usize]);
        }
    }
    (vals[0], phi)
}

fn scorer(s: &EnsembleSpec) -> NativeScorer {
    NativeScorer {
        input: "x".into(),
        n_features: W,
        pre: Prep::default(),
        core: Core::Trees(Box::new(compile(s).expect("compile"))),
        post: Vec::new(),
        column: 0,
    }
}

/// Every tree by the recursion, the first trees by tables (a bound the larger trees
/// overflow), every tree by tables.
const LIMITS: [usize; 3] = [0, 40, super::DEFAULT_TABLE_ENTRIES];

fn check(modes: &[Mode], seed: u64) {
    for limit in LIMITS {
        check_with(modes, seed, limit);
    }
}

fn check_with(modes: &[Mode], seed: u64, limit: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pool = [-1.5f32, -0.0, 0.0, 0.25, 1.0, 2.5];
    let leaves = [2usize, 5, 9, 17];
    let mut s = spec(&mut rng, &leaves, modes, &pool, Aggregate::Sum);
    let reference = rows(&mut rng, 400, &pool);
    let x = rows(&mut rng, 60, &pool);
    let c = counts(&s, leaves.len(), &reference);

    let sc = scorer(&s);
    let from_ref = Explainer::with_table_limit(
        &sc,
        Some(Reference {
            x: &reference,
            n_rows: 400,
        }),
        limit,
    )
    .expect("explainer");
    let (tab, all) = from_ref.tabulated_trees();
    assert_eq!(all, leaves.len());
    match limit {
        0 => assert_eq!(tab, 0),
        40 => assert!(tab > 0 && tab < all, "{tab} of {all} trees tabulated"),
        _ => assert_eq!(tab, leaves.iter().filter(|&&l| l > 1).count()),
    }
    let phi = from_ref.explain_rows(&x, 60).expect("explain");
    // The same covers stored as nodes_hitrates give the same values.
    for n in &mut s.nodes {
        n.hitrate = c.get(&(n.tree, n.id)).copied().unwrap_or(0.0) as f32;
    }
    s.no_hitrates = None;
    let from_file = Explainer::with_table_limit(&scorer(&s), None, limit);
    for (r, row) in x.chunks_exact(W).enumerate() {
        let (bias, want) = brute(&s, &c, leaves.len(), row);
        assert!(
            (from_ref.bias() - bias).abs() < 1e-9,
            "bias {} vs {bias}",
            from_ref.bias()
        );
        let got = &phi[r * W..(r + 1) * W];
        for j in 0..W {
            assert!(
                (got[j] - want[j]).abs() < 1e-9,
                "seed {seed} limit {limit} row {r} feature {j}: {} vs {} (row {row:?})",
                got[j],
                want[j]
            );
        }
        // local accuracy against the first-principles leaf sum
        let margin: f64 = (0..leaves.len() as i64)
            .map(|t| f64::from(crate::tree::tests::reference_leaf(&s, t, row)))
            .sum();
        let total = bias + got.iter().sum::<f64>();
        assert!(
            (total - margin).abs() < 1e-9,
            "row {r}: {total} vs {margin}"
        );
    }
    // Zero-count nodes cannot be checked as covers (the file's check refuses them).
    if c.len() == s.nodes.len() {
        let ff = from_file.expect("file covers");
        let phi2 = ff.explain_rows(&x, 60).expect("explain");
        assert_eq!(phi, phi2);
    }
}

#[test]
fn fast_layout_matches_brute_force_shapley() {
    for seed in 0..6 {
        check(&[Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt], seed);
    }
}

#[test]
fn general_layout_matches_brute_force_shapley() {
    for seed in 10..16 {
        check(
            &[
                Mode::Leq,
                Mode::Lt,
                Mode::Gte,
                Mode::Gt,
                Mode::Eq,
                Mode::Neq,
            ],
            seed,
        );
    }
}

#[test]
fn deterministic_for_any_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let pool = [-1.5f32, 0.0, 0.25, 1.0, 2.5];
    let s = spec(
        &mut rng,
        // 100 leaves: more than 64 internal nodes, the per-step pattern path of the tables
        &[31, 63, 7, 100],
        &[Mode::Leq, Mode::Lt],
        &pool,
        Aggregate::Sum,
    );
    let x = rows(&mut rng, 3000, &pool);
    let sc = scorer(&s);
    let run = |threads: usize, limit: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let ex = Explainer::with_table_limit(
                &sc,
                Some(Reference {
                    x: &x,
                    n_rows: 3000,
                }),
                limit,
            )
            .expect("ex");
            (
                ex.bias().to_bits(),
                ex.explain_rows(&x, 3000).expect("explain"),
            )
        })
    };
    for limit in [0, super::DEFAULT_TABLE_ENTRIES] {
        let (b1, p1) = run(1, limit);
        let (b3, p3) = run(3, limit);
        assert_eq!(b1, b3);
        assert!(p1.iter().zip(&p3).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    // tables and recursion agree to f64 rounding on trees of up to 100 leaves
    let (_, plain) = run(1, 0);
    let (_, fast) = run(2, super::DEFAULT_TABLE_ENTRIES);
    let worst = plain
        .iter()
        .zip(&fast)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "max |tables - recursion| = {worst:e}");
}

#[test]
fn missing_covers_name_the_fix() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let pool = [0.0f32, 1.0];
    let mut s = spec(&mut rng, &[4], &[Mode::Leq], &pool, Aggregate::Sum);
    let e = Explainer::new(&scorer(&s), None).expect_err("no covers");
    assert!(e.to_string().contains("--reference"), "{e}");
    // onnxmltools' hitrates: 1.0 everywhere
    for n in &mut s.nodes {
        n.hitrate = 1.0;
    }
    s.no_hitrates = None;
    let e = Explainer::new(&scorer(&s), None).expect_err("not covers");
    assert!(e.to_string().contains("not node covers"), "{e}");
    assert!(e.to_string().contains("--reference"), "{e}");
}
