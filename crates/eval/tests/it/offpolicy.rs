//! Simulation from first principles: over many replications of a period with a known truth,
//! the 95 % intervals of the IPW, self-normalised IPW and doubly robust estimates of a target
//! policy's hit rate cover the finite-population truth 93–97 % of the time, with relative bias
//! ≤ 2 %, while the naive mean over inspected rows (propensities ignored) is clearly biased.
//!
//! World (per replication, n rows): x, z ~ U(0, 1); P(fraud) = 0.02 + 0.20·x + 0.25·z².
//! Logging policy: a rule on z inspects with π = 0.1 + 0.5·z (independent draws), so π
//! correlates with fraud inside any target set. Target policy: the top 5 % by a noisy score
//! x + 0.3·u. Outcome model for DR: a deliberately imperfect 0.8·P(fraud) + 0.02.

use cr_eval::offpolicy::{policy_value, LoggedData, PolicyEstimate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn ipw_snipw_dr_cover_the_truth_and_naive_does_not() {
    let (reps, n, share) = (1000usize, 20_000usize, 0.05);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut cover = [0usize; 3];
    let mut err_sum = [0.0f64; 4];
    let mut truth_sum = 0.0;
    for _ in 0..reps {
        let mut score = Vec::with_capacity(n);
        let mut outcome = Vec::with_capacity(n);
        let mut propensity = Vec::with_capacity(n);
        let mut model = Vec::with_capacity(n);
        let mut y_all = Vec::with_capacity(n);
        for _ in 0..n {
            let (x, z): (f64, f64) = (rng.random(), rng.random());
            let p = 0.02 + 0.20 * x + 0.25 * z * z;
            let y = f64::from(u8::from(rng.random::<f64>() < p));
            let pi = 0.1 + 0.5 * z;
            let inspected = rng.random::<f64>() < pi;
            score.push(x + 0.3 * rng.random::<f64>());
            outcome.push(inspected.then_some(y));
            propensity.push(inspected.then_some(pi));
            model.push(0.8 * p + 0.02);
            y_all.push(y);
        }
        let t = (share * n as f64) as usize;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
        let mut target = vec![false; n];
        for &i in &order[..t] {
            target[i] = true;
        }
        let truth = (0..n).filter(|&i| target[i]).map(|i| y_all[i]).sum::<f64>() / t as f64;
        truth_sum += truth;
        let v = policy_value(
            &target,
            LoggedData {
                outcome: &outcome,
                propensity: &propensity,
            },
            Some(&model),
            0.95,
        )
        .unwrap();
        let ests: [PolicyEstimate; 3] = [v.ipw, v.snipw.unwrap(), v.doubly_robust.unwrap()];
        for (k, e) in ests.iter().enumerate() {
            cover[k] += usize::from(e.covers(truth));
            err_sum[k] += e.value - truth;
        }
        err_sum[3] += v.naive.unwrap().value - truth;
    }
    let mean_truth = truth_sum / reps as f64;
    for (k, name) in ["ipw", "snipw", "doubly robust"].iter().enumerate() {
        let c = cover[k] as f64 / reps as f64;
        let rel_bias = err_sum[k] / reps as f64 / mean_truth;
        eprintln!("{name}: coverage {c:.3}, relative bias {rel_bias:+.4}");
        assert!(
            (0.93..=0.97).contains(&c),
            "{name}: 95 % interval covered the truth in {c:.3} of {reps} replications"
        );
        assert!(
            rel_bias.abs() <= 0.02,
            "{name}: relative bias {rel_bias:.4}"
        );
    }
    let naive_bias = err_sum[3] / reps as f64 / mean_truth;
    eprintln!("naive (propensities ignored): relative bias {naive_bias:+.4}");
    assert!(
        naive_bias > 0.05,
        "ignoring propensities should overstate the hit rate here; relative bias {naive_bias:.4}"
    );
}

/// One period of the promotion experiment: the champion A (signal x1 only) chose what was
/// inspected: its top 5 % with π = 1, every other row by an independent random floor π = 0.10.
/// Returns (A's top-k, B's top-k, logged outcomes, propensities, DR model, true difference).
#[allow(clippy::type_complexity)]
fn promotion_period(
    rng: &mut ChaCha8Rng,
    n: usize,
    challenger_better: bool,
) -> (
    Vec<bool>,
    Vec<bool>,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
    Vec<f64>,
    f64,
) {
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let normal = |rng: &mut ChaCha8Rng| {
        // Box–Muller: enough for a test world.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let (mut sa, mut sb, mut y, mut m) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (x1, x2) = (normal(rng), normal(rng));
        let p = sigmoid(-3.5 + x1 + x2);
        y.push(f64::from(u8::from(rng.random::<f64>() < p)));
        sa.push(x1);
        if challenger_better {
            // Sees the planted second signal.
            sb.push(x1 + x2);
            m.push(sigmoid(-3.5 + 0.8 * (x1 + x2)));
        } else {
            // Trained on shuffled labels: its ranking carries no signal.
            sb.push(rng.random::<f64>());
            m.push(sigmoid(-3.5 + x1));
        }
    }
    let k = n / 20;
    let top = |s: &[f64]| {
        let mut o: Vec<usize> = (0..n).collect();
        o.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let mut t = vec![false; n];
        for &i in &o[..k] {
            t[i] = true;
        }
        t
    };
    let (ta, tb) = (top(&sa), top(&sb));
    let (mut outcome, mut propensity) = (vec![None; n], vec![None; n]);
    for i in 0..n {
        let pi = if ta[i] { 1.0 } else { 0.10 };
        if pi >= 1.0 || rng.random::<f64>() < pi {
            outcome[i] = Some(y[i]);
            propensity[i] = Some(pi);
        }
    }
    let mean = |t: &[bool]| (0..n).filter(|&i| t[i]).map(|i| y[i]).sum::<f64>() / k as f64;
    let truth = mean(&tb) - mean(&ta);
    (ta, tb, outcome, propensity, m, truth)
}

#[test]
fn paired_difference_intervals_cover_and_the_gate_promotes_only_the_better_model() {
    use cr_eval::offpolicy::{policy_difference, PromotionGate};
    let (reps, n) = (300usize, 20_000usize);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let gate = PromotionGate::default();
    let (mut promoted_better, mut promoted_worse) = (0usize, 0usize);
    let mut cover = [0usize; 3];
    for _ in 0..reps {
        for better in [true, false] {
            let (ta, tb, outcome, propensity, m, truth) = promotion_period(&mut rng, n, better);
            let d = policy_difference(
                &ta,
                &tb,
                LoggedData {
                    outcome: &outcome,
                    propensity: &propensity,
                },
                Some(&m),
                0.95,
            )
            .unwrap();
            if better {
                for (k, e) in [d.ipw, d.snipw.unwrap(), d.doubly_robust.unwrap()]
                    .iter()
                    .enumerate()
                {
                    cover[k] += usize::from(e.covers(truth));
                }
                promoted_better += usize::from(gate.decide(&d).promote);
            } else {
                promoted_worse += usize::from(gate.decide(&d).promote);
            }
        }
    }
    let rate = promoted_better as f64 / reps as f64;
    eprintln!(
        "gate: better challenger promoted {promoted_better}/{reps}, worse {promoted_worse}/{reps}"
    );
    for (k, name) in ["ipw", "snipw", "doubly robust"].iter().enumerate() {
        let c = cover[k] as f64 / reps as f64;
        eprintln!("difference {name}: coverage {c:.3}");
        // 300 replications: ±2.6 SE around 0.95.
        assert!((0.91..=0.99).contains(&c), "{name}: coverage {c:.3}");
    }
    assert_eq!(promoted_worse, 0, "a worse challenger was promoted");
    assert!(rate >= 0.90, "better challenger promoted in only {rate:.3}");
}
