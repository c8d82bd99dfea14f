use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args as ClapArgs;
use cr_infer::{DeclarationModel, Engine, LoadOptions};
use cr_train::{Algo, TrainConfig};

use super::evaluate::{config, eval_rows};

/// The whole loop on generated data, with the embedded defaults: generate declarations with
/// planted fraud and a legacy inspection process, train a GBDT and a logistic regression on the
/// first months, score the file, evaluate the GBDT on the later months (selection-aware, HTML
/// report) and compare the two models. Everything lands in --dir: declarations.csv, models/,
/// scores.csv, evaluation.html / .json, comparison.html / .json. Takes about a minute for the
/// default 200,000 rows on 2 cores (once built; see scripts/demo.sh).
///
/// Examples:
///   customs-risk demo
///   customs-risk demo --rows 50000 --dir /tmp/demo --seed 7
#[derive(ClapArgs, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "out/demo")]
    dir: PathBuf,
    /// Declarations to generate.
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Master seed of the generated data and of both models: the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print nothing but errors (the files are written all the same).
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // Every line of the summary goes through `say!`: --quiet prints nothing but errors.
    let quiet = a.quiet;
    macro_rules! say {
        ($($t:tt)*) => {
            if !quiet {
                println!($($t)*);
            }
        };
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let schema = cr_synth::schema()?;
    let data = a.dir.join("declarations.csv");
    let batch = cr_synth::generate(
        &cr_synth::SynthConfig {
            rows: a.rows,
            seed: a.seed,
            ..Default::default()
        },
        &schema,
    )?;
    cr_data::write_batch(&data, &schema, &batch)?;
    say!(
        "1. generated {} declarations -> {}",
        batch.len(),
        data.display()
    );
    drop(batch);

    let mut outcomes = Vec::new();
    for (algo, name) in [(Algo::Gbdt, "gbdt"), (Algo::Logistic, "logistic")] {
        let mut cfg = TrainConfig::new(
            data.clone(),
            schema.clone(),
            algo,
            a.dir.join("models").join(name),
        );
        cfg.gbdt = cfg
            .gbdt
            .clone()
            .num_trees(300)
            .learning_rate(0.05)
            .feature_fraction(0.9)
            .bagging_fraction(0.9)
            .bagging_freq(1)
            .early_stopping_rounds(30);
        cfg.seed = a.seed;
        let o = super::train::train_with_progress(&cfg, a.quiet)?;
        if !quiet {
            println!("2. trained {name}:");
            super::train::print_summary(&o);
        }
        outcomes.push(o);
    }

    let scores = a.dir.join("scores.csv");
    let gbdt = &outcomes[0].onnx_path;
    let model = DeclarationModel::load(
        gbdt,
        &LoadOptions {
            engine: Engine::Auto,
            threads: 0,
        },
    )?;
    let (all, _) = cr_data::read_all(&data, model.schema(), &cr_data::ReadOptions::default())?;
    let t = Instant::now();
    let s = model.score_batch(&all)?;
    say!(
        "3. scored {} declarations with the {:?} engine in {:.2}s -> {}",
        s.len(),
        model.engine_used(),
        t.elapsed().as_secs_f64(),
        scores.display()
    );
    let k = cr_model::Budget::Rate(0.05).k(s.len());
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&i, &j| s[j].total_cmp(&s[i]).then(i.cmp(&j)));
    let mut selected = vec![false; s.len()];
    order.iter().take(k).for_each(|&i| selected[i] = true);
    let mut w = cr_data::TableWriter::create(
        &scores,
        &[
            ("id", cr_data::ColType::Str),
            ("score", cr_data::ColType::F64),
            ("percentile", cr_data::ColType::F64),
            ("selected", cr_data::ColType::Bool),
        ],
    )?;
    w.write_rows(&[
        cr_data::Column::Str(all.ids.clone()),
        cr_data::Column::F64(s.iter().map(|&v| f64::from(v)).collect()),
        cr_data::Column::F64(
            s.iter()
                .map(|&v| cr_infer::bulk::percentile(model.reference(), v))
                .collect(),
        ),
        cr_data::Column::Bool(selected),
    ])?;
    w.finish()?;

    // evaluate on the validation period (after training)
    let valid_from = &outcomes[0].card.split.valid_from;
    let (_, later, later_scores) = super::evaluate::load_and_score(
        gbdt,
        &data,
        super::score::EngineArg::Auto,
        super::validate::OnErrorArg::Fail,
        Some(valid_from),
    )?;
    let (features, reference_scores) = super::evaluate::drift_inputs(&model, &later)?;
    let input = cr_eval::EvalInput {
        model: "gbdt".into(),
        scores: later_scores.clone(),
        rows: eval_rows(model.schema(), &later),
        reference_scores,
        features,
    };
    let report = cr_eval::evaluate(&input, &config(None, a.seed))?;
    let eval_html = a.dir.join("evaluation.html");
    std::fs::write(&eval_html, cr_eval::render_evaluation_html(&report))?;
    std::fs::write(a.dir.join("evaluation.json"), report.to_json())?;
    say!(
        "4. evaluated gbdt on declarations from {valid_from} -> {}",
        eval_html.display()
    );
    say!("   {}", drift_line(&report.drift));

    match DeclarationModel::load(&outcomes[1].onnx_path, &LoadOptions { engine: Engine::Auto, threads: 0 }) {
        Ok(lr) => {
            let lr_scores: Vec<f64> = lr.score_batch(&later)?.into_iter().map(f64::from).collect();
            let models = vec![("logistic".to_string(), lr_scores), ("gbdt".to_string(), later_scores)];
            let cmp = cr_eval::compare(&models, &eval_rows(model.schema(), &later), &config(None, a.seed))?;
            let cmp_html = a.dir.join("comparison.html");
            std::fs::write(&cmp_html, cr_eval::render_comparison_html(&cmp))?;
            say!("5. compared logistic (baseline) with gbdt -> {}", cmp_html.display());
            for p in &cmp.pairs {
                for s in &p.sentences {
                    say!("   {s}");
                }
            }
        }
        Err(e) => say!("5. skipped the comparison: the logistic model needs ONNX Runtime ({e}); run scripts/setup-ort.sh"),
    }
    // the registry the service reads (SQLite)
    let reg_path = a.dir.join("registry.db");
    let _ = std::fs::remove_file(&reg_path);
    let mut reg = cr_service::Registry::open(&reg_path)?;
    let champion = reg.register(
        &outcomes[0].onnx_path,
        &cr_service::RegisterOptions {
            name: "gbdt".into(),
            version: None,
            thresholds: cr_service::ThresholdSpec::default(),
            registered_by: "demo".into(),
            policy: None,
        },
    )?;
    reg.promote(&champion.version, "demo")?;
    say!(
        "6. registered {} as champion in {} (serve it: customs-risk serve --registry {})",
        champion.version,
        reg_path.display(),
        reg_path.display()
    );
    say!(
        "done in {:.1}s; everything is in {}",
        t0.elapsed().as_secs_f64(),
        a.dir.display()
    );
    Ok(())
}

/// One line on drift: how many features moved (PSI at or above the flag), naming them, and the
/// calendar features left unflagged because a time split moves them by construction.
pub fn drift_line(d: &cr_eval::DriftReport) -> String {
    let flagged: Vec<&str> = d
        .score
        .iter()
        .chain(&d.features)
        .filter(|p| p.flagged)
        .map(|p| p.name.as_str())
        .collect();
    let expected: Vec<String> = d
        .features
        .iter()
        .filter(|p| p.expected_shift.is_some() && p.psi >= d.flag)
        .map(|p| format!("{} {:.2}", p.name, p.psi))
        .collect();
    let mut line = format!(
        "drift: {} of {} features{} at PSI >= {}",
        flagged.len(),
        d.features.len(),
        if d.score.is_some() {
            " and the score"
        } else {
            ""
        },
        d.flag
    );
    if !flagged.is_empty() {
        line.push_str(&format!(" ({})", flagged.join(", ")));
    }
    if !expected.is_empty() {
        line.push_str(&format!(
            "; not flagged, calendar features a time split moves: {}",
            expected.join(", ")
        ));
    }
    line
}
