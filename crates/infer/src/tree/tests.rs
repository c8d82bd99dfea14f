//! Kernel equivalence: every kernel this CPU runs (lock-step scalar, portable bit-vector,
//! AVX2, AVX-512) must reach the same leaf for every row and tree, and that leaf must be the
//! one a first-principles walk of the ONNX attributes reaches (ONNX-ML TreeEnsemble
//! semantics: `x <= t` etc. on f32, NaN takes the `missing_tracks_true` side when set, else
//! fails every comparison). Random trees with mixed `<`/`<=`/`>`/`>=` splits and missing
//! directions, thresholds including ±0, ±inf and NaN, rows hitting thresholds exactly, their
//! f32 neighbours, NaN and ±inf.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::compile::compile;
use super::simd::Kernel;
use super::spec::{Aggregate, EnsembleSpec, Head, Mode, PostTransform, RawNode, RawTarget};
use super::CompiledEnsemble;

pub(crate) const NF: usize = 6; // features the trees read (rows carry one more, unused)

pub(crate) fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> T {
    v[rng.random_range(0..v.len())]
}

pub(crate) fn threshold(rng: &mut ChaCha8Rng, pool: &[f32]) -> f32 {
    match rng.random_range(0..50) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        _ => pick(rng, pool),
    }
}

/// A random tree with `n_leaves` leaves, root first, other nodes shuffled.
pub(crate) fn tree(
    rng: &mut ChaCha8Rng,
    t: i64,
    n_leaves: usize,
    modes: &[Mode],
    pool: &[f32],
    out: &mut EnsembleSpec,
) {
    let leaf = RawNode {
        tree: t,
        id: 0,
        feature: 0,
        mode: Mode::Leaf,
        value: 0.0,
        true_id: 0,
        false_id: 0,
        missing_true: false,
        hitrate: f32::NAN,
    };
    let mut nodes = vec![leaf];
    let mut leaves = vec![0usize];
    while leaves.len() < n_leaves {
        let k = rng.random_range(0..leaves.len());
        let i = leaves.swap_remove(k);
        let (a, b) = (nodes.len(), nodes.len() + 1);
        for id in [a, b] {
            nodes.push(RawNode {
                id: id as i64,
                ..leaf
            });
            leaves.push(id);
        }
        nodes[i] = RawNode {
            tree: t,
            id: i as i64,
            feature: rng.random_range(0..NF as i64),
            mode: pick(rng, modes),
            value: threshold(rng, pool),
            true_id: a as i64,
            false_id: b as i64,
            missing_true: rng.random_bool(0.5),
            hitrate: f32::NAN,
        };
    }
    // Distinct, exactly representable leaf weights identify the leaf in sums.
    let mut rest: Vec<RawNode> = nodes[1..].to_vec();
    for k in (1..rest.len()).rev() {
        rest.swap(k, rng.random_range(0..=k));
    }
    out.nodes.push(nodes[0]);
    out.nodes.extend(rest);
    for n in &nodes {
        if n.mode == Mode::Leaf {
            let weight = (t * 128 + n.id) as f32 * 0.25;
            out.targets.push(RawTarget {
                tree: t,
                node: n.id,
                slot: 0,
                weight,
            });
        }
    }
}

pub(crate) fn spec(
    rng: &mut ChaCha8Rng,
    leaves: &[usize],
    modes: &[Mode],
    pool: &[f32],
    aggregate: Aggregate,
) -> EnsembleSpec {
    let mut s = EnsembleSpec {
        op: "TreeEnsembleRegressor".into(),
        head: Head::Regressor { n_targets: 1 },
        aggregate,
        post: PostTransform::None,
        base_values: Vec::new(),
        nodes: Vec::new(),
        targets: Vec::new(),
        no_hitrates: Some("test ensemble".into()),
    };
    for (t, &l) in leaves.iter().enumerate() {
        tree(rng, t as i64, l, modes, pool, &mut s);
    }
    s
}

pub(crate) fn rows(rng: &mut ChaCha8Rng, n: usize, pool: &[f32]) -> Vec<f32> {
    (0..n * (NF + 1))
        .map(|_| match rng.random_range(0..20) {
            0 | 1 => f32::NAN,
            2 => f32::INFINITY,
            3 => f32::NEG_INFINITY,
            4 => -0.0,
            5..=9 => pick(rng, pool),
            10 => pick(rng, pool).next_up(),
            11 => pick(rng, pool).next_down(),
            _ => rng.random_range(-3.0f32..3.0),
        })
        .collect()
}

/// First-principles walk of tree `t` of `s`: the weight of the leaf `row` reaches.
pub(crate) fn reference_leaf(s: &EnsembleSpec, t: i64, row: &[f32]) -> f32 {
    let find = |id: i64| s.nodes.iter().find(|n| n.tree == t && n.id == id).copied();
    let mut n = find(0).expect("root");
    while n.mode != Mode::Leaf {
        let (v, th) = (row[n.feature as usize], n.value);
        let go_true = if v.is_nan() && n.missing_true {
            true
        } else {
            match n.mode {
                Mode::Leq => v <= th,
                Mode::Lt => v < th,
                Mode::Gte => v >= th,
                Mode::Gt => v > th,
                Mode::Eq => v == th,
                Mode::Neq => v != th,
                Mode::Leaf => unreachable!(),
            }
        };
        n = find(if go_true { n.true_id } else { n.false_id }).expect("child");
    }
    s.targets
        .iter()
        .find(|w| w.tree == t && w.node == n.id)
        .expect("weight")
        .weight
}

fn kernels() -> Vec<Kernel> {
    let mut k = vec![Kernel::Scalar, Kernel::Bitvec];
    #[cfg(target_arch = "x86_64")]
    k.extend([Kernel::Avx2, Kernel::Avx512]);
    k.retain(|k| k.supported());
    k
}

/// Every kernel gives the reference leaf for every (row, tree), and the same sums.
fn check(s: &EnsembleSpec, x: &[f32], n_rows: usize, expect_simd: bool) {
    let base = compile(s).expect("compile");
    assert_eq!(base.simd.is_some(), expect_simd);
    let n_trees = base.trees.len();
    let mut want = vec![0f32; n_rows * n_trees];
    for r in 0..n_rows {
        for t in 0..n_trees {
            want[r * n_trees + t] =
                reference_leaf(s, t as i64, &x[r * (NF + 1)..(r + 1) * (NF + 1)]);
        }
    }
    let mut first: Option<(Vec<u32>, Vec<f32>)> = None;
    for k in kernels() {
        let mut e: CompiledEnsemble = base.clone();
        if !e.set_kernel(k) {
            assert!(!expect_simd || k == Kernel::Scalar, "{k:?} refused");
            continue;
        }
        let leaves = e.leaf_matrix(x, NF + 1, n_rows);
        let got: Vec<f32> = leaves.iter().map(|&i| e.nodes[i as usize].value).collect();
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{k:?}: row {} tree {}",
                j / n_trees,
                j % n_trees
            );
        }
        let mut z = vec![0f32; n_rows];
        e.predict(x, NF + 1, n_rows, &mut z).expect("predict");
        match &first {
            None => first = Some((leaves, z)),
            Some((l0, z0)) => {
                assert_eq!(&leaves, l0, "{k:?}: leaf indices");
                let same = z.iter().zip(z0).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{k:?}: scores differ from the first kernel's");
            }
        }
    }
    // Sum aggregate: f32 sums of the reference leaves in tree order.
    if s.aggregate == Aggregate::Sum {
        let (_, z) = first.expect("a kernel ran");
        for r in 0..n_rows {
            let sum = want[r * n_trees..(r + 1) * n_trees]
                .iter()
                .fold(0f32, |a, &v| a + v);
            assert_eq!(z[r].to_bits(), sum.to_bits(), "row {r}");
        }
    }
}

fn pool(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut p = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.0,
        -1.0,
        2.0,
        1e-30,
        -1e-30,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
    ];
    p.extend((0..8).map(|_| rng.random_range(-3.0f32..3.0)));
    p
}

#[test]
fn kernels_agree_with_reference_on_random_trees() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0013);
    let modes = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt];
    for round in 0..6 {
        let p = pool(&mut rng);
        let n_trees = rng.random_range(1..12);
        // up to 64 leaves (bit-vector kernels), 1-leaf trees, full 64-leaf trees
        let leaves: Vec<usize> = (0..n_trees)
            .map(|_| match rng.random_range(0..6) {
                0 => 1,
                1 => 64,
                _ => rng.random_range(2..=64),
            })
            .collect();
        let agg = if round % 2 == 0 {
            Aggregate::Sum
        } else {
            Aggregate::Max
        };
        let s = spec(&mut rng, &leaves, &modes, &p, agg);
        for n_rows in [1, 15, 16, 17, 64, 65, 128, 129, 191, 256, 300] {
            let x = rows(&mut rng, n_rows, &p);
            check(&s, &x, n_rows, true);
        }
    }
}

#[test]
fn big_trees_and_equality_splits_fall_back_to_scalar() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0014);
    let p = pool(&mut rng);
    // a tree with 65 leaves: no bit-vector layout
    let s = spec(
        &mut rng,
        &[8, 65, 3],
        &[Mode::Leq, Mode::Gt],
        &p,
        Aggregate::Sum,
    );
    let x = rows(&mut rng, 200, &p);
    check(&s, &x, 200, false);
    // == / != splits: general kernel
    let s = spec(
        &mut rng,
        &[10, 30],
        &[Mode::Leq, Mode::Eq, Mode::Neq, Mode::Lt],
        &p,
        Aggregate::Sum,
    );
    let x = rows(&mut rng, 200, &p);
    check(&s, &x, 200, false);
}

/// `predict` of `e` with a fresh scratch (a nested call finds the thread's scratch borrowed
/// and allocates its own).
fn fresh_predict(e: &CompiledEnsemble, x: &[f32], n_rows: usize) -> Vec<f32> {
    let mut z = vec![0f32; n_rows * e.n_outputs()];
    super::scratch::with_scratch(|_| e.predict(x, NF + 1, n_rows, &mut z)).expect("predict");
    z
}

/// The per-thread scratch is reused across calls: alternating ensembles (bit-vector,
/// multi-slot, general kernel) and batch sizes on one thread and on rayon workers must give
/// exactly what a fresh scratch gives (and, for small batches of the single-slot ensemble,
/// the first-principles sums), so nothing stale from an earlier call can leak into a result.
#[test]
fn reused_scratch_gives_the_same_scores_as_fresh_scratch() {
    use rayon::prelude::*;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0015);
    let p = pool(&mut rng);
    let fast = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt];
    let single = spec(
        &mut rng,
        &[64, 1, 37, 64, 5, 64, 20],
        &fast,
        &p,
        Aggregate::Sum,
    );
    // two target slots, some leaves feeding both: the multi-slot payload
    let mut multi = spec(&mut rng, &[30, 64, 9], &fast, &p, Aggregate::Sum);
    multi.head = Head::Regressor { n_targets: 2 };
    let extra: Vec<RawTarget> = multi
        .targets
        .iter()
        .step_by(3)
        .map(|w| RawTarget {
            slot: 1,
            weight: w.weight * 0.5,
            ..*w
        })
        .collect();
    multi.targets.iter_mut().step_by(2).for_each(|w| w.slot = 1);
    multi.targets.extend(extra);
    let general = spec(
        &mut rng,
        &[12, 40],
        &[Mode::Leq, Mode::Eq, Mode::Neq],
        &p,
        Aggregate::Sum,
    );
    let mut models = Vec::new();
    for s in [&single, &multi, &general] {
        let base = compile(s).expect("compile");
        for k in kernels() {
            let mut e = base.clone();
            if e.set_kernel(k) {
                models.push((s, e));
            }
        }
    }
    let multi_payload = models
        .iter()
        .find(|(s, _)| std::ptr::eq(*s, &multi))
        .map(|m| &m.1.payload);
    assert!(matches!(
        multi_payload,
        Some(super::compile::Payload::Multi { .. })
    ));
    // (model, rows, expected scores)
    let mut jobs = Vec::new();
    for round in 0..2 {
        for (i, n_rows) in [1usize, 257, 3, 4096, 5, 16, 64, 130]
            .into_iter()
            .enumerate()
        {
            let (s, e) = &models[(i + round) % models.len()];
            let x = rows(&mut rng, n_rows, &p);
            let want = fresh_predict(e, &x, n_rows);
            if std::ptr::eq(*s, &single) && n_rows <= 16 {
                let n_trees = e.n_trees();
                for r in 0..n_rows {
                    let row = &x[r * (NF + 1)..(r + 1) * (NF + 1)];
                    let sum = (0..n_trees).fold(0f32, |a, t| a + reference_leaf(s, t as i64, row));
                    assert_eq!(
                        want[r].to_bits(),
                        sum.to_bits(),
                        "first principles, row {r}"
                    );
                }
            }
            jobs.push((e, x, n_rows, want));
        }
    }
    let run = |(e, x, n_rows, want): &(&CompiledEnsemble, Vec<f32>, usize, Vec<f32>)| {
        let mut z = vec![0f32; n_rows * e.n_outputs()];
        e.predict(x, NF + 1, *n_rows, &mut z).expect("predict");
        let same = z.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{:?}, {n_rows} rows: scores differ from a fresh scratch's",
            e.kernel
        );
        assert!(super::scratch::held_bytes() <= super::scratch::KEEP_BYTES);
    };
    // same thread, every model in turn at every size
    for _ in 0..2 {
        jobs.iter().for_each(run);
    }
    // rayon workers, each reusing its own scratch in whatever order it steals jobs
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool");
    workers.install(|| {
        (0..4)
            .into_par_iter()
            .for_each(|_| jobs.par_iter().for_each(run))
    });
}
