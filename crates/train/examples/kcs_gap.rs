//! KCS gap study, our side (benches/kcs/README.md): train 2020 -> test 2021-Q2 with the
//! feature pipeline + cr-gbdt under the variants that could explain the gap to LightGBM.
//! Prints one JSON line per variant. Run: `cargo run -p cr-train --example kcs_gap -- DIR`
//! where DIR holds df_syn_{train,test}_eng.csv.

use std::path::{Path, PathBuf};

use cr_data::{read_all, Batch, ReadOptions, Schema};
use cr_eval::{at_budgets, roc_auc, Budget};
use cr_features::PipelineConfig;
use cr_gbdt::GbdtParams;

fn labels(b: &Batch) -> Vec<f32> {
    b.label
        .iter()
        .map(|l| f32::from(u8::from(*l == Some(true))))
        .collect()
}

struct Run<'a> {
    name: &'a str,
    pipeline: PipelineConfig,
    /// Some(days): train on rows before, early-stop on rows from (the CLI default, no refit).
    valid_from: Option<i32>,
    schema: &'a Schema,
    train: &'a Batch,
    test: &'a Batch,
}

fn run(r: Run<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let (fit_rows, valid_rows): (Vec<usize>, Vec<usize>) = match r.valid_from {
        Some(v) => (0..r.train.len()).partition(|&i| r.train.dates[i] < v),
        None => ((0..r.train.len()).collect(), vec![]),
    };
    let fit_batch = r.train.take(&fit_rows);
    let (pipeline, oof) = cr_features::fit(r.schema, &fit_batch, &r.pipeline)?;
    let ytr = labels(&fit_batch);
    let mut params = GbdtParams::default()
        .num_trees(200)
        .num_leaves(63)
        .learning_rate(0.05)
        .min_data_in_leaf(20)
        .seed(42);
    let x = ndarray::ArrayView2::from_shape((oof.n_rows, oof.n_cols), &oof.data)?;
    let valid = if valid_rows.is_empty() {
        None
    } else {
        params = params.early_stopping_rounds(30);
        let vb = r.train.take(&valid_rows);
        Some((pipeline.transform(&vb)?, labels(&vb)))
    };
    let vview = match &valid {
        Some((m, y)) => Some((
            ndarray::ArrayView2::from_shape((m.n_rows, m.n_cols), &m.data)?,
            y.as_slice(),
        )),
        None => None,
    };
    let model = cr_gbdt::train(&params, x, &ytr, None, vview, None)?;
    let xte = pipeline.transform(r.test)?;
    let xt = ndarray::ArrayView2::from_shape((xte.n_rows, xte.n_cols), &xte.data)?;
    let s: Vec<f64> = model.predict_proba(xt)?.to_vec();
    let y: Vec<bool> = r.test.label.iter().map(|l| *l == Some(true)).collect();
    let auc = roc_auc(&s, &y, None)?;
    let b = at_budgets(&s, &y, None, &[Budget::Rate(0.05)])?;
    println!(
        "{}",
        serde_json::json!({
            "side": "customs-risk", "variant": r.name,
            "auc": (auc * 1e4).round() / 1e4,
            "p5": b.first().and_then(|p| p.precision).map(|p| (p * 1e4).round() / 1e4),
            "trees": model.num_trees(), "features": oof.n_cols,
        })
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/customs-import-declarations".into()),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schema = Schema::from_path(&root.join("data/schemas/kcs.toml"))?;
    let opts = ReadOptions::default();
    let (train, _) = read_all(&dir.join("df_syn_train_eng.csv"), &schema, &opts)?;
    let (test, _) = read_all(&dir.join("df_syn_test_eng.csv"), &schema, &opts)?;
    // The CLI's default validation start: the month holding the latest ~20 % of rows (2020-10).
    let oct = cr_data::schema::days_from_ymd(2020, 10, 1).ok_or("date")?;
    let base = PipelineConfig::default();
    let mk = |name, pipeline, valid_from| Run {
        name,
        pipeline,
        valid_from,
        schema: &schema,
        train: &train,
        test: &test,
    };
    run(mk(
        "CLI default: fit on 2020-01..09, early stop on 2020-10..12, no refit",
        base.clone(),
        Some(oct),
    ))?;
    run(mk("all of 2020, 200 trees (refit)", base.clone(), None))?;
    for m in [1.0, 5.0, 100.0] {
        let name: &'static str =
            Box::leak(format!("all of 2020, smoothing m={m}").into_boxed_str());
        run(mk(
            name,
            PipelineConfig {
                smoothing: m,
                ..base.clone()
            },
            None,
        ))?;
    }
    run(mk(
        "all of 2020, no pair profiles",
        PipelineConfig {
            pairs: Some(vec![]),
            ..base.clone()
        },
        None,
    ))?;
    Ok(())
}
