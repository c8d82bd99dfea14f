//! Measures `--sample-weight ipw` against `none` on generated data (see benches/train/ipw.py
//! for the same through the CLI).
//!
//! usage: ipw_effect ROWS SEEDS(comma-separated) OUTDIR
//!
//! cr-synth data over 18 months from 2023-01-01 (a biased legacy rule inspects ~8 % of rows, a
//! 2 % random sample, propensities recorded); trains the default GBDT on the first 12 months
//! with each weighting, scores the last 6 months and prints per seed: the hit rate at a 5 %
//! inspection budget estimated on the random sample (positives / labelled random rows in the
//! top 5 % of all rows) and by IPW (Σ y/π / Σ 1/π over labelled rows in the top 5 %), and
//! ROC-AUC on the random sample.

use std::path::Path;

use cr_data::Selection;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: ipw_effect ROWS SEEDS OUTDIR".into());
    }
    let rows: usize = args[1].parse()?;
    let out = Path::new(&args[3]);
    let schema = cr_synth::schema()?;
    let cut = cr_data::schema::days_from_ymd(2024, 1, 1).ok_or("date")?;
    for seed in args[2].split(',') {
        let seed: u64 = seed.parse()?;
        let cfg = cr_synth::SynthConfig {
            rows,
            seed,
            months: 18,
            ..Default::default()
        };
        let all = cr_synth::generate(&cfg, &schema)?;
        let tr: Vec<usize> = (0..all.len()).filter(|&i| all.dates[i] < cut).collect();
        let te: Vec<usize> = (0..all.len()).filter(|&i| all.dates[i] >= cut).collect();
        let train_path = out.join(format!("train{seed}.csv"));
        cr_data::write_batch(&train_path, &schema, &all.take(&tr))?;
        let test = all.take(&te);
        let mut line = format!("seed {seed}:");
        for w in [cr_train::SampleWeight::None, cr_train::SampleWeight::Ipw] {
            let mut c = cr_train::TrainConfig::new(
                train_path.clone(),
                schema.clone(),
                cr_train::Algo::Gbdt,
                out.join(format!("m{seed}{}", w.as_str())),
            );
            c.sample_weight = w;
            let o = cr_train::run(&c, &mut |_| {})?;
            let m = cr_onnx::load_model(&o.onnx_path)?;
            let meta = cr_onnx::metadata_map(&m);
            let pipeline = cr_features::FittedPipeline::from_json(
                meta.get("customs_risk.pipeline").ok_or("no pipeline")?,
            )?;
            let x = pipeline.transform(&test)?;
            let xv = ndarray::ArrayView2::from_shape((x.n_rows, x.n_cols), &x.data)?;
            let s = o.gbdt.as_ref().ok_or("no gbdt")?.predict_proba(xv)?;
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let k = (0.05 * s.len() as f64).ceil() as usize;
            let (mut rl, mut rp, mut iw, mut iy) = (0usize, 0usize, 0.0f64, 0.0f64);
            for &i in &order[..k] {
                if let Some(y) = test.label[i] {
                    if test.selection[i] == Some(Selection::Random) {
                        rl += 1;
                        rp += usize::from(y);
                    }
                    let p = test.propensity[i].ok_or("propensity")?;
                    iw += 1.0 / p;
                    iy += f64::from(u8::from(y)) / p;
                }
            }
            let rnd: Vec<usize> = (0..test.len())
                .filter(|&i| {
                    test.selection[i] == Some(Selection::Random) && test.label[i].is_some()
                })
                .collect();
            let auc = cr_eval::metrics::roc_auc(
                &rnd.iter().map(|&i| s[i]).collect::<Vec<_>>(),
                &rnd.iter()
                    .map(|&i| test.label[i] == Some(true))
                    .collect::<Vec<_>>(),
                None,
            )?;
            line += &format!(
                "  {}: random-sample hit@5% {:.4} ({rp}/{rl}), IPW hit@5% {:.4}, random-sample AUC {:.4}",
                w.as_str(),
                rp as f64 / rl.max(1) as f64,
                iy / iw.max(f64::MIN_POSITIVE),
                auc
            );
        }
        println!("{line}");
    }
    Ok(())
}
