//! End-to-end: train on generated declarations, export ONNX, and check that ONNX Runtime
//! (Python, independent of our code) reproduces our features bit for bit and our scores
//! within 1e-6, for both algorithms.

use std::path::Path;
use std::process::Command;

use cr_data::{read_all, ReadOptions};
use cr_features::FittedPipeline;
use cr_train::{run, Algo, TrainConfig, TrainObjective};

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (scripts/test.sh installs the references)");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn generate(dir: &Path, rows: usize, seed: u64) -> std::path::PathBuf {
    let schema = cr_synth::schema().unwrap();
    let cfg = cr_synth::SynthConfig {
        rows,
        seed,
        months: 12,
        ..Default::default()
    };
    let batch = cr_synth::generate(&cfg, &schema).unwrap();
    let path = dir.join("decl.csv");
    cr_data::write_batch(&path, &schema, &batch).unwrap();
    path
}

fn meta(model: &Path, key: &str) -> String {
    let m = cr_onnx::load_model(model).unwrap();
    cr_onnx::metadata_map(&m)
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no metadata {key}"))
}

fn check_against_ort(algo: Algo, objective: TrainObjective) {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 30_000, 7);
    let schema = cr_synth::schema().unwrap();
    let mut cfg = TrainConfig::new(data.clone(), schema.clone(), algo, dir.path().join("m"));
    cfg.gbdt = cfg.gbdt.clone().num_trees(40).num_leaves(15);
    cfg.threads = 2;
    cfg.objective = objective;
    let outcome = run(&cfg, &mut |_| {}).unwrap();
    let card = &outcome.card;
    let revenue = objective == TrainObjective::Revenue;
    assert_eq!(card.objective, objective.as_str());
    assert_eq!(
        meta(&outcome.onnx_path, cr_model::meta::PREDICTION),
        objective.prediction().as_str()
    );
    let v = card.validation.as_ref().unwrap();
    if revenue {
        // revenue metrics: a deviance, revenue caught at every budget, no log loss; the
        // reference distribution is of predicted revenue (amounts, not probabilities)
        let d = v
            .tweedie_deviance
            .expect("a revenue model's card has its deviance");
        assert!(d.is_finite() && d > 0.0, "{d}");
        assert!(v.log_loss.is_none());
        assert!(v.at_budget.iter().all(|b| b.revenue_share.is_some()));
        let share5 = v.at_budget[2].revenue_share.unwrap();
        assert!(
            share5 > 0.05 * 2.0,
            "top 5 % by predicted revenue catch only {share5} of the revenue"
        );
        assert!(*card.score_quantiles.last().unwrap() > 1.0);
    } else {
        assert!(v.tweedie_deviance.is_none() && v.log_loss.is_some());
    }
    let auc = v.roc_auc.unwrap();
    if algo == Algo::Logistic {
        // The card records the solver's convergence (scikit-learn's rules, max 100 iterations).
        let s = card.fit.solver.as_ref().expect("logistic solver report");
        assert!(
            s.converged && s.iterations <= 100 && s.gradient_max.is_finite(),
            "{s:?}"
        );
    }
    assert!(
        auc > 0.6,
        "validation AUC {auc} is too low for planted fraud"
    );

    // Our side: pipeline from the ONNX metadata + the model's own predictions.
    let pipeline =
        FittedPipeline::from_json(&meta(&outcome.onnx_path, cr_model::meta::PIPELINE)).unwrap();
    let (batch, rejects) = read_all(&data, &schema, &ReadOptions::default()).unwrap();
    assert!(rejects.is_empty());
    let feats = pipeline.transform(&batch).unwrap();

    // ONNX Runtime side.
    let schema_json = dir.path().join("schema.json");
    std::fs::write(&schema_json, serde_json::to_string(&schema).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ort_check.py");
    let n: usize = python(&[
        script.to_str().unwrap(),
        outcome.onnx_path.to_str().unwrap(),
        data.to_str().unwrap(),
        schema_json.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ])
    .trim()
    .parse()
    .unwrap();
    assert_eq!(n, batch.len());
    let raw = std::fs::read(dir.path().join("ort_features.bin")).unwrap();
    let ort_feats: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(ort_feats.len(), feats.data.len());
    let names = pipeline.feature_names();
    for (i, (a, b)) in feats.data.iter().zip(&ort_feats).enumerate() {
        let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        assert!(
            same,
            "feature {} of row {}: ours {a:?}, ONNX Runtime {b:?}",
            names[i % feats.n_cols],
            i / feats.n_cols
        );
    }
    let ort_scores: Vec<f64> = std::fs::read_to_string(dir.path().join("ort_scores.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let x = ndarray::ArrayView2::from_shape((feats.n_rows, feats.n_cols), &feats.data).unwrap();
    // probabilities: absolute difference; expected revenue (amounts up to thousands):
    // relative to the amount
    let diff = |a: f64, b: f64| {
        if revenue {
            (a - b).abs() / b.abs().max(1e-3)
        } else {
            (a - b).abs()
        }
    };
    let tol = if revenue { 1e-5 } else { 1e-6 };
    let ours: Vec<f64> = match algo {
        Algo::Gbdt => {
            // The trained model's own predictions, and a first-principles traversal of the
            // exported tree ensemble, must both agree with ONNX Runtime.
            let m = cr_onnx::load_model(&outcome.onnx_path).unwrap();
            let reference = reference_tree_scores(&m, &feats.data, feats.n_cols);
            let model = outcome.gbdt.as_ref().unwrap();
            let ours = model.predict(x).unwrap();
            let worst = ours
                .iter()
                .zip(&reference)
                .map(|(a, b)| diff(*a, *b))
                .fold(0.0, f64::max);
            assert!(
                worst <= tol,
                "trained model vs exported trees differ by {worst}"
            );
            ours
        }
        Algo::Logistic => {
            let lm: cr_linear::LogisticModel =
                serde_json::from_str(&meta(&outcome.onnx_path, cr_model::meta::LOGISTIC)).unwrap();
            lm.predict_proba(x)
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect()
        }
    };
    let worst = ours
        .iter()
        .zip(&ort_scores)
        .map(|(a, b)| diff(*a, *b))
        .fold(0.0, f64::max);
    assert!(worst <= tol, "max |ours - ONNX Runtime| = {worst}");
    if revenue {
        let distinct: std::collections::BTreeSet<u64> =
            ort_scores.iter().map(|s| s.to_bits()).collect();
        assert!(distinct.len() > 50, "only {} distinct", distinct.len());
        eprintln!("revenue model vs ONNX Runtime: max relative difference {worst:e}");
    }
}

/// First-principles traversal of the exported TreeEnsembleClassifier (BRANCH_LEQ, missing
/// tracks true, LOGISTIC of base + Σ weights) or TreeEnsembleRegressor followed by `Exp`
/// (revenue models), in f64.
fn reference_tree_scores(m: &cr_onnx::proto::ModelProto, x: &[f32], nf: usize) -> Vec<f64> {
    let g = m.graph.as_ref().unwrap();
    let node = g
        .node
        .iter()
        .find(|n| {
            matches!(
                n.op_type.as_deref(),
                Some("TreeEnsembleClassifier" | "TreeEnsembleRegressor")
            )
        })
        .unwrap();
    let classifier = node.op_type.as_deref() == Some("TreeEnsembleClassifier");
    let (w_tree, w_node, w_weight) = if classifier {
        ("class_treeids", "class_nodeids", "class_weights")
    } else {
        // the regressor's output feeds an Exp (log link)
        let out = &node.output[0];
        assert!(g
            .node
            .iter()
            .any(|n| n.op_type.as_deref() == Some("Exp") && n.input[0] == *out));
        ("target_treeids", "target_nodeids", "target_weights")
    };
    let a = cr_onnx::Attrs::new(node);
    let tree = a.ints("nodes_treeids").unwrap();
    let id = a.ints("nodes_nodeids").unwrap();
    let feat = a.ints("nodes_featureids").unwrap();
    let modes = a.strings("nodes_modes").unwrap();
    let vals = a.floats("nodes_values").unwrap();
    let t_ids = a.ints("nodes_truenodeids").unwrap();
    let f_ids = a.ints("nodes_falsenodeids").unwrap();
    let miss = a.ints("nodes_missing_value_tracks_true").unwrap();
    let ct = a.ints(w_tree).unwrap();
    let cn = a.ints(w_node).unwrap();
    let cw = a.floats(w_weight).unwrap();
    let base = a.floats("base_values").unwrap()[0] as f64;
    let idx: std::collections::HashMap<(i64, i64), usize> = tree
        .iter()
        .zip(id.iter())
        .enumerate()
        .map(|(i, (t, n))| ((*t, *n), i))
        .collect();
    let leafw: std::collections::HashMap<(i64, i64), f64> = ct
        .iter()
        .zip(cn.iter())
        .zip(cw.iter())
        .map(|((t, n), w)| ((*t, *n), *w as f64))
        .collect();
    let n_trees = tree.iter().max().unwrap() + 1;
    x.chunks(nf)
        .map(|row| {
            let mut s = base;
            for t in 0..n_trees {
                let mut i = idx[&(t, 0)];
                while modes[i] != "LEAF" {
                    let v = row[feat[i] as usize];
                    let left = if v.is_nan() {
                        miss[i] == 1
                    } else {
                        v <= vals[i]
                    };
                    i = idx[&(t, if left { t_ids[i] } else { f_ids[i] })];
                }
                s += leafw[&(t, id[i])];
            }
            if classifier {
                1.0 / (1.0 + (-s).exp())
            } else {
                s.exp()
            }
        })
        .collect()
}

#[test]
fn gbdt_onnx_matches_onnx_runtime() {
    check_against_ort(Algo::Gbdt, TrainObjective::Binary);
}

#[test]
fn logistic_onnx_matches_onnx_runtime() {
    check_against_ort(Algo::Logistic, TrainObjective::Binary);
}

/// `--objective revenue`: the Tweedie GBDT exported as TreeEnsembleRegressor → Exp; ONNX
/// Runtime's `expected_revenue` equals our model's prediction within 1e-5 relative.
#[test]
fn revenue_onnx_matches_onnx_runtime() {
    check_against_ort(Algo::Gbdt, TrainObjective::Revenue);
}

#[test]
fn same_seed_same_model_bytes_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 8_000, 3);
    // the same bytes under another name: the path is a fact of the run, not of the model
    let copy = dir.path().join("copy-of-the-data.csv");
    std::fs::copy(&data, &copy).unwrap();
    let schema = cr_synth::schema().unwrap();
    let mut files = Vec::new();
    let mut cards = Vec::new();
    let mut paths = Vec::new();
    for (k, (threads, data)) in [(1usize, &data), (2, &copy), (2, &data)].iter().enumerate() {
        let mut cfg = TrainConfig::new((*data).clone(), schema.clone(), Algo::Gbdt, {
            let d = dir.path().join(format!("t{k}"));
            std::fs::create_dir_all(&d).unwrap();
            d.join("m")
        });
        cfg.gbdt = cfg
            .gbdt
            .clone()
            .num_trees(20)
            .feature_fraction(0.8)
            .bagging_fraction(0.8)
            .bagging_freq(1);
        cfg.threads = *threads;
        let out = run(&cfg, &mut |_| {}).unwrap();
        files.push(std::fs::read(&out.onnx_path).unwrap());
        paths.push(out.onnx_path);
        cards.push(out.card);
    }
    // the whole file, card included, byte for byte (so the registry's version label, the
    // file's sha256, is the same too)
    assert!(
        files[0] == files[1],
        "1 and 2 threads gave different model files"
    );
    assert!(
        files[1] == files[2],
        "the data's path changed the model file"
    );
    // the run facts are in the card beside the model, not in the file
    let run = cards[1]
        .run
        .as_ref()
        .expect("the sidecar card has the run facts");
    assert_eq!(run.threads, 2);
    assert!(run.data_file.ends_with("copy-of-the-data.csv"));
    let m = cr_onnx::load_model(&paths[0]).unwrap();
    let inside = m
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(cr_model::meta::CARD))
        .expect("card in the file");
    let inside = cr_model::ModelCard::from_json(inside.value.as_deref().unwrap_or("")).unwrap();
    assert_eq!(inside.run, None);
    assert_eq!(inside, cards[0].for_model_file());
}

/// Labelled rows and positives in `data`, and those dated before `valid_from` (counted from
/// the file by cr-data, not by the training run).
fn label_counts(data: &Path, valid_from: &str) -> ((u64, u64), (u64, u64)) {
    let schema = cr_synth::schema().unwrap();
    let (b, _) = read_all(data, &schema, &ReadOptions::default()).unwrap();
    let d = chrono::NaiveDate::parse_from_str(valid_from, "%Y-%m-%d").unwrap();
    use chrono::Datelike;
    let vf = cr_data::schema::days_from_ymd(d.year(), d.month(), d.day()).unwrap();
    let (mut all, mut before) = ((0, 0), (0, 0));
    for (l, &day) in b.label.iter().zip(&b.dates) {
        if let Some(pos) = l {
            all.0 += 1;
            all.1 += u64::from(*pos);
            if day < vf {
                before.0 += 1;
                before.1 += u64::from(*pos);
            }
        }
    }
    (all, before)
}

#[test]
fn refit_on_all_labelled_rows_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 12_000, 5);
    let schema = cr_synth::schema().unwrap();
    let mut shipped = Vec::new();
    for refit in [true, false] {
        let mut cfg = TrainConfig::new(
            data.clone(),
            schema.clone(),
            Algo::Gbdt,
            dir.path().join(format!("m{refit}")),
        );
        cfg.gbdt = cfg.gbdt.clone().num_trees(200).learning_rate(0.3);
        cfg.refit = refit;
        let out = run(&cfg, &mut |_| {}).unwrap();
        let card = &out.card;
        let ((all, all_pos), (before, before_pos)) = label_counts(&data, &card.split.valid_from);
        assert!(before < all, "the split must leave validation rows");
        let pipeline =
            FittedPipeline::from_json(&meta(&out.onnx_path, cr_model::meta::PIPELINE)).unwrap();
        let model = out.gbdt.as_ref().unwrap();
        // Early stopping chose the rounds on the validation period (fewer than the cap) ...
        let best = card.best_iteration.expect("validation picks the rounds");
        assert!(best < 200, "early stopping should stop before 200 rounds");
        // ... and the shipped model has exactly that many trees either way.
        assert_eq!(model.num_trees(), best);
        let (n, pos) = if refit {
            (all, all_pos)
        } else {
            (before, before_pos)
        };
        // The shipped pipeline's statistics were fitted on those labelled rows.
        assert_eq!(pipeline.n_labelled, n, "refit {refit}");
        assert!((pipeline.prior - pos as f64 / n as f64).abs() < 1e-12);
        assert_eq!(
            (card.fit.refit, card.fit.rows, card.fit.positives),
            (refit, n, pos)
        );
        assert_eq!(card.fit.trees, Some(best));
        // Validation metrics always describe the model fitted before the validation period.
        assert_eq!(card.split.train_rows, before);
        assert!(card.validation.as_ref().unwrap().roc_auc.unwrap() > 0.6);
        shipped.push(model.clone());
    }
    assert_ne!(shipped[0].trees, shipped[1].trees);
}

#[test]
fn ipw_weights_reach_the_learner() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 12_000, 9);
    let schema = cr_synth::schema().unwrap();
    let mut cfg = TrainConfig::new(
        data.clone(),
        schema.clone(),
        Algo::Gbdt,
        dir.path().join("w"),
    );
    cfg.gbdt = cfg.gbdt.clone().num_trees(5);
    cfg.sample_weight = cr_train::SampleWeight::Ipw;
    cfg.ipw_max_weight = 40.0; // below 1 / 0.02 (the random sample's propensity): clips
    let out = run(&cfg, &mut |_| {}).unwrap();
    // First principles: the binary GBDT starts from the log-odds of the weighted positive rate,
    // so its base score tells which weights it saw. Recompute them from the file.
    let (b, _) = read_all(&data, &schema, &ReadOptions::default()).unwrap();
    let (mut sw, mut swy, mut clipped, mut rows) = (0.0f64, 0.0f64, 0u64, 0u64);
    for (l, p) in b.label.iter().zip(&b.propensity) {
        if let Some(pos) = l {
            let raw = 1.0 / p.unwrap();
            clipped += u64::from(raw > 40.0);
            let w = f64::from(raw.min(40.0) as f32);
            sw += w;
            swy += w * f64::from(u8::from(*pos));
            rows += 1;
        }
    }
    let rate = swy / sw;
    let model = out.gbdt.as_ref().unwrap();
    assert!(
        (model.base_score - (rate / (1.0 - rate)).ln()).abs() < 1e-6,
        "base score {} vs weighted log-odds {}",
        model.base_score,
        (rate / (1.0 - rate)).ln()
    );
    let f = &out.card.fit;
    assert_eq!(f.sample_weight, "ipw");
    assert_eq!((f.rows, f.ipw_clipped_rows), (rows, Some(clipped)));
    assert!(clipped > 0 && f.effective_rows.unwrap() < rows as f64);
    // A schema without a propensity column cannot be weighted: a clear error, not a guess.
    let mut no_prop = schema.clone();
    no_prop.propensity = None;
    let mut bad = TrainConfig::new(data, no_prop, Algo::Gbdt, dir.path().join("x"));
    bad.sample_weight = cr_train::SampleWeight::Ipw;
    let e = run(&bad, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("propensity"), "{e}");
}

#[test]
fn monotone_constraint_by_feature_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 8_000, 4);
    let schema = cr_synth::schema().unwrap();
    let mut cfg = TrainConfig::new(data, schema, Algo::Gbdt, dir.path().join("m"));
    cfg.gbdt = cfg.gbdt.clone().num_trees(30);
    cfg.monotone = vec![("no_such_feature".into(), 1)];
    let e = run(&cfg, &mut |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("no_such_feature") && e.contains("features are"),
        "{e}"
    );
    // A real feature: the exported constraint vector names it, and sweeping it never lowers
    // the score (the GBDT-level sweep test covers the learner; this checks the wiring).
    let out0 = {
        let mut c = cfg.clone();
        c.monotone = Vec::new();
        run(&c, &mut |_| {}).unwrap()
    };
    let name = out0.card.features[0].clone();
    cfg.monotone = vec![(name.clone(), 1)];
    let out = run(&cfg, &mut |_| {}).unwrap();
    let m = out.gbdt.as_ref().unwrap();
    let j = m.feature_names.iter().position(|f| *f == name).unwrap();
    assert_eq!(m.params.monotone_constraints[j], 1);
    assert_eq!(
        m.params
            .monotone_constraints
            .iter()
            .filter(|&&v| v != 0)
            .count(),
        1
    );
    let nf = m.n_features;
    let mut x = vec![0.0f32; 101 * nf];
    for k in 0..101 {
        x[k * nf + j] = k as f32 / 10.0 - 2.0;
    }
    let xv = ndarray::ArrayView2::from_shape((101, nf), &x).unwrap();
    let p = m.predict_raw(xv).unwrap();
    assert!(p.windows(2).all(|w| w[1] >= w[0]), "{p:?}");
}

/// The `io::Error` under `err`, walking its `source()` chain.
fn io_cause(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

#[test]
fn a_missing_data_file_keeps_its_io_error_as_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let schema = cr_synth::schema().unwrap();
    let cfg = TrainConfig::new(
        dir.path().join("missing.csv"),
        schema,
        Algo::Gbdt,
        dir.path().join("m"),
    );
    let err = run(&cfg, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
    assert_eq!(
        io_cause(&err),
        Some(std::io::ErrorKind::NotFound),
        "{err:?}"
    );
}

#[test]
fn an_output_path_without_a_file_name_is_refused_not_a_nameless_card() {
    let dir = tempfile::tempdir().unwrap();
    let schema = cr_synth::schema().unwrap();
    for out in ["/", ".."] {
        let cfg = TrainConfig::new(
            dir.path().join("d.csv"),
            schema.clone(),
            Algo::Gbdt,
            out.into(),
        );
        let err = run(&cfg, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("names no file"), "{out}: {err}");
    }
}

fn write_f32(path: &Path, v: &[f32]) {
    std::fs::write(
        path,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
}

/// `--objective revenue` against LightGBM's `tweedie` (an independent implementation) on
/// generated declarations: the design matrix the run learned from is rebuilt here through
/// cr-features' public API (pipeline fitted on the rows before the validation start,
/// out-of-fold features for its labelled rows, the validation rows transformed) and checked
/// against the run (its model on the rebuilt validation rows gives the card's deviance).
/// LightGBM then fits it with the same variance power, leaves, learning rate and rounds on 1
/// thread: at the rounds the run kept (best validation deviance) and at 100 rounds (ours
/// refitted on the rebuilt matrix with the run's parameters). Mean Tweedie deviance
/// (scikit-learn's `mean_tweedie_deviance` for both): within 1 % on the training rows, and on
/// the validation rows ours no more than 1 % above LightGBM's.
#[test]
fn revenue_deviance_matches_lightgbm_tweedie() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 150_000, 21);
    let schema = cr_synth::schema().unwrap();
    let mut cfg = TrainConfig::new(
        data.clone(),
        schema.clone(),
        Algo::Gbdt,
        dir.path().join("r"),
    );
    cfg.objective = TrainObjective::Revenue;
    cfg.refit = false;
    cfg.threads = 1;
    cfg.gbdt = cfg
        .gbdt
        .clone()
        .num_trees(100)
        .num_leaves(15)
        .min_data_in_leaf(50)
        .learning_rate(0.05)
        .early_stopping_rounds(0);
    let outcome = run(&cfg, &mut |_| {}).unwrap();
    let card = &outcome.card;
    let model = outcome.gbdt.as_ref().unwrap();
    let kept = model.num_trees();
    assert_eq!(card.best_iteration, Some(kept));

    // the run's design matrices, rebuilt
    let d = chrono::NaiveDate::parse_from_str(&card.split.valid_from, "%Y-%m-%d").unwrap();
    use chrono::Datelike;
    let vf = cr_data::schema::days_from_ymd(d.year(), d.month(), d.day()).unwrap();
    let opts = ReadOptions {
        require_label: true,
        ..ReadOptions::default()
    };
    let (batch, _) = read_all(&data, &schema, &opts).unwrap();
    let train_idx: Vec<usize> = (0..batch.len()).filter(|&i| batch.dates[i] < vf).collect();
    let valid_idx: Vec<usize> = (0..batch.len())
        .filter(|&i| batch.dates[i] >= vf && batch.label[i].is_some())
        .collect();
    let train = batch.take(&train_idx);
    let valid = batch.take(&valid_idx);
    let mut pcfg = cfg.pipeline.clone();
    pcfg.seed = cfg.seed;
    let (pipeline, oof) = cr_features::fit(&schema, &train, &pcfg).unwrap();
    let nf = oof.n_cols;
    let (mut xtr, mut ytr) = (Vec::new(), Vec::new());
    for i in (0..train.len()).filter(|&i| train.label[i].is_some()) {
        xtr.extend_from_slice(oof.row(i));
        ytr.push(train.revenue[i].unwrap_or(0.0));
    }
    let xva = pipeline.transform(&valid).unwrap();
    let yva: Vec<f32> = valid.revenue.iter().map(|r| r.unwrap_or(0.0)).collect();
    assert_eq!(ytr.len() as u64, card.split.train_rows);
    assert_eq!(yva.len() as u64, card.split.valid_rows);
    assert!(
        ytr.iter().filter(|&&r| r > 0.0).count() > 200,
        "too few rows with revenue"
    );
    let xva_view = ndarray::ArrayView2::from_shape((yva.len(), nf), &xva.data).unwrap();
    let ours_kept = model.predict(xva_view).unwrap();
    // 100 rounds: the run's parameters, without the validation set that truncates the trees
    let params: cr_gbdt::GbdtParams = serde_json::from_value(card.params.clone()).unwrap();
    let t = std::time::Instant::now();
    let hundred = cr_gbdt::train(
        &params.num_threads(1),
        ndarray::ArrayView2::from_shape((ytr.len(), nf), &xtr).unwrap(),
        &ytr,
        None,
        None,
        None,
    )
    .unwrap();
    let ours_fit_100 = t.elapsed().as_secs_f64();
    assert_eq!(hundred.num_trees(), 100);
    let ours_100 = hundred.predict(xva_view).unwrap();
    let xtr_view = ndarray::ArrayView2::from_shape((ytr.len(), nf), &xtr).unwrap();
    let ours_train = [
        (kept, model.predict(xtr_view).unwrap()),
        (100, hundred.predict(xtr_view).unwrap()),
    ];

    let p = dir.path();
    write_f32(&p.join("xtr.bin"), &xtr);
    write_f32(&p.join("ytr.bin"), &ytr);
    write_f32(&p.join("xva.bin"), &xva.data);
    write_f32(&p.join("yva.bin"), &yva);
    let write_f64 = |name: String, v: &[f64]| {
        std::fs::write(
            p.join(name),
            v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap()
    };
    for (r, v) in [(kept, &ours_kept), (100, &ours_100)] {
        write_f64(format!("ours_{r}.bin"), v);
    }
    for (r, v) in &ours_train {
        write_f64(format!("ours_train_{r}.bin"), v);
    }
    let shape = serde_json::json!({
        "n_features": nf,
        "variance_power": cr_train::REVENUE_VARIANCE_POWER,
        "params": card.params,
        "rounds": [kept, 100],
    });
    std::fs::write(p.join("shape.json"), shape.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lgb_tweedie.py");
    let out: serde_json::Value =
        serde_json::from_str(&python(&[script.to_str().unwrap(), p.to_str().unwrap()])).unwrap();
    let constant = out["constant_deviance"].as_f64().unwrap();
    let card_dev = card
        .validation
        .as_ref()
        .and_then(|v| v.tweedie_deviance)
        .unwrap();
    let ours_fit_kept = card.run.as_ref().unwrap().timings["train"];
    let mut devs = Vec::new();
    for (r, ours_fit) in [(kept, ours_fit_kept), (100, ours_fit_100)] {
        let o = &out[r.to_string()];
        let f = |k: &str| o[k].as_f64().unwrap();
        let (ours_dev, lgb_dev) = (f("ours_deviance"), f("lightgbm_deviance"));
        eprintln!(
            "{r} rounds: validation Tweedie deviance ours {ours_dev:.6}, LightGBM {lgb_dev:.6} \
             (constant {constant:.6}); training rows: ours {:.6}, LightGBM {:.6}; fit on 1 \
             thread: ours {ours_fit:.3} s, LightGBM {:.3} s",
            f("ours_train_deviance"),
            f("lightgbm_train_deviance"),
            f("lightgbm_fit_s")
        );
        if r == kept {
            // the card's deviance is scikit-learn's on the rebuilt rows: the rebuild is the run's
            assert!(
                (card_dev - ours_dev).abs() <= 1e-9 * ours_dev,
                "card {card_dev} vs scikit-learn on the rebuilt validation rows {ours_dev}"
            );
            assert!(
                ours_dev < 0.95 * constant,
                "learned nothing: {ours_dev} vs constant {constant}"
            );
        }
        devs.push((
            r,
            ours_dev,
            lgb_dev,
            f("ours_train_deviance"),
            f("lightgbm_train_deviance"),
        ));
    }
    for (r, ours_dev, lgb_dev, ours_train, lgb_train) in devs {
        // the same objective: the deviance each fit reaches on its training rows agrees
        assert!(
            (ours_train - lgb_train).abs() <= 0.01 * lgb_train,
            "training deviance after {r} rounds: ours {ours_train}, LightGBM {lgb_train}"
        );
        // On the validation period both overfit the heavy-tailed amounts (deviance rises from
        // the kept rounds to 100), and which rows get extreme predictions depends on the
        // bin edges, which differ between the libraries (ours 4-7 % lower when written);
        // so: never worse than LightGBM by more than 1 %.
        assert!(
            ours_dev <= 1.01 * lgb_dev,
            "validation deviance after {r} rounds: ours {ours_dev}, LightGBM {lgb_dev}"
        );
    }
}
