//! End-to-end: train on generated declarations, export ONNX, and check that ONNX Runtime
//! (Python, independent of our code) reproduces our features bit for bit and our scores
//! within 1e-6, for both algorithms.

use std::path::Path;
use std::process::Command;

use cr_data::{read_all, ReadOptions};
use cr_features::FittedPipeline;
use cr_train::{run, Algo, TrainConfig};

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

fn check_against_ort(algo: Algo) {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), 30_000, 7);
    let schema = cr_synth::schema().unwrap();
    let mut cfg = TrainConfig::new(data.clone(), schema.clone(), algo, dir.path().join("m"));
    cfg.gbdt = cfg.gbdt.clone().num_trees(40).num_leaves(15);
    cfg.threads = 2;
    let outcome = run(&cfg, &mut |_| {}).unwrap();
    let card = &outcome.card;
    let auc = card.validation.as_ref().and_then(|v| v.roc_auc).unwrap();
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
    let ours: Vec<f64> = match algo {
        Algo::Gbdt => {
            // The trained model's own predictions, and a first-principles traversal of the
            // exported TreeEnsembleClassifier, must both agree with ONNX Runtime.
            let m = cr_onnx::load_model(&outcome.onnx_path).unwrap();
            let reference = reference_tree_scores(&m, &feats.data, feats.n_cols);
            let model = outcome.gbdt.as_ref().unwrap();
            let ours = model.predict_proba(x).unwrap();
            let worst = ours
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 1e-6,
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
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-6, "max |ours - ONNX Runtime| = {worst}");
}

/// First-principles traversal of the exported TreeEnsembleClassifier (BRANCH_LEQ, missing
/// tracks true, LOGISTIC of base + Σ weights), in f64.
fn reference_tree_scores(m: &cr_onnx::proto::ModelProto, x: &[f32], nf: usize) -> Vec<f64> {
    let g = m.graph.as_ref().unwrap();
    let node = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("TreeEnsembleClassifier"))
        .unwrap();
    let a = cr_onnx::Attrs::new(node);
    let tree = a.ints("nodes_treeids").unwrap();
    let id = a.ints("nodes_nodeids").unwrap();
    let feat = a.ints("nodes_featureids").unwrap();
    let modes = a.strings("nodes_modes").unwrap();
    let vals = a.floats("nodes_values").unwrap();
    let t_ids = a.ints("nodes_truenodeids").unwrap();
    let f_ids = a.ints("nodes_falsenodeids").unwrap();
    let miss = a.ints("nodes_missing_value_tracks_true").unwrap();
    let ct = a.ints("class_treeids").unwrap();
    let cn = a.ints("class_nodeids").unwrap();
    let cw = a.floats("class_weights").unwrap();
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
            1.0 / (1.0 + (-s).exp())
        })
        .collect()
}

#[test]
fn gbdt_onnx_matches_onnx_runtime() {
    check_against_ort(Algo::Gbdt);
}

#[test]
fn logistic_onnx_matches_onnx_runtime() {
    check_against_ort(Algo::Logistic);
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
