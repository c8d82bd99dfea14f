//! Writes the logistic regression's design matrix and fits it, for `benches/linear/compare.py`.
//!
//! usage: logistic_design DATA SCHEMA VALID_FROM(YYYY-MM-DD) OUTDIR
//!        logistic_design generate:ROWS synthetic VALID_FROM OUTDIR   (cr-synth data, 18 months
//!        from 2023-01-01, written to OUTDIR/decl.csv first)
//!
//! Fits our feature pipeline on the rows dated before VALID_FROM (as `train` does), writes the
//! labelled training rows' features (`xtr.bin`, f32), labels (`ytr.bin`), the later labelled
//! rows (`xte.bin`, `yte.bin`), `meta.json` (feature count, log-feature indexes) and fits
//! `cr_linear` with its defaults (C = 1), writing its test scores (`ours.txt`) and its fit time,
//! iterations, final gradient and convergence into `ours.json`.

use std::path::Path;
use std::time::Instant;

fn write_f32(path: &Path, v: &[f32]) -> std::io::Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: logistic_design DATA SCHEMA VALID_FROM OUTDIR".into());
    }
    let out = Path::new(&args[4]);
    let (schema, data) = match args[1].strip_prefix("generate:") {
        Some(rows) => {
            let schema = cr_synth::schema()?;
            let cfg = cr_synth::SynthConfig {
                rows: rows.parse()?,
                months: 18,
                ..Default::default()
            };
            let batch = cr_synth::generate(&cfg, &schema)?;
            let path = out.join("decl.csv");
            cr_data::write_batch(&path, &schema, &batch)?;
            (schema, path)
        }
        None => (
            cr_data::Schema::from_path(Path::new(&args[2]))?,
            Path::new(&args[1]).to_path_buf(),
        ),
    };
    let (batch, _) = cr_data::read_all(&data, &schema, &cr_data::ReadOptions::default())?;
    let d = chrono::NaiveDate::parse_from_str(&args[3], "%Y-%m-%d")?;
    use chrono::Datelike;
    let vf = cr_data::schema::days_from_ymd(d.year(), d.month(), d.day()).ok_or("bad date")?;
    let train_idx: Vec<usize> = (0..batch.len()).filter(|&i| batch.dates[i] < vf).collect();
    let test_idx: Vec<usize> = (0..batch.len())
        .filter(|&i| batch.dates[i] >= vf && batch.label[i].is_some())
        .collect();
    let train = batch.take(&train_idx);
    let test = batch.take(&test_idx);
    let (pipeline, oof) =
        cr_features::fit(&schema, &train, &cr_features::PipelineConfig::default())?;
    let lab: Vec<usize> = (0..train.len())
        .filter(|&i| train.label[i].is_some())
        .collect();
    let nf = oof.n_cols;
    let mut xtr = Vec::with_capacity(lab.len() * nf);
    for &i in &lab {
        xtr.extend_from_slice(oof.row(i));
    }
    let ytr: Vec<bool> = lab.iter().map(|&i| train.label[i] == Some(true)).collect();
    let xte = pipeline.transform(&test)?;
    let yte: Vec<bool> = test.label.iter().map(|l| *l == Some(true)).collect();
    let as_f32 = |y: &[bool]| -> Vec<f32> { y.iter().map(|&b| f32::from(u8::from(b))).collect() };
    write_f32(&out.join("xtr.bin"), &xtr)?;
    write_f32(&out.join("ytr.bin"), &as_f32(&ytr))?;
    write_f32(&out.join("xte.bin"), &xte.data)?;
    write_f32(&out.join("yte.bin"), &as_f32(&yte))?;
    let params = cr_linear::LogisticParams {
        log_features: cr_train::default_log_features(&pipeline),
        ..Default::default()
    };
    std::fs::write(
        out.join("meta.json"),
        serde_json::json!({"n_features": nf, "log_features": params.log_features}).to_string(),
    )?;
    let x = ndarray::ArrayView2::from_shape((lab.len(), nf), &xtr)?;
    let t = Instant::now();
    let model = cr_linear::fit(&params, x, &ytr, None)?;
    let secs = t.elapsed().as_secs_f64();
    let xt = ndarray::ArrayView2::from_shape((test.len(), nf), &xte.data)?;
    let p = model.predict_proba(xt)?;
    let lines: Vec<String> = p.iter().map(|v| v.to_string()).collect();
    std::fs::write(out.join("ours.txt"), lines.join("\n"))?;
    std::fs::write(
        out.join("ours.json"),
        serde_json::json!({"fit_s": secs, "report": model.report}).to_string(),
    )?;
    Ok(())
}
