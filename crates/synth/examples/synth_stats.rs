//! Print summary statistics of a generated batch (tuning aid):
//! `cargo run --release -p cr-synth --example synth_stats -- ROWS SEED [CSV_OUT]`.
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(42);
    let schema = cr_synth::schema()?;
    let cfg = cr_synth::SynthConfig {
        rows,
        seed,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let (b, truth) = cr_synth::generate_with_truth(&cfg, &schema)?;
    eprintln!(
        "generated {} rows in {:.3} s",
        b.len(),
        t.elapsed().as_secs_f64()
    );
    let n = b.len() as f64;
    let fraud = (0..b.len()).filter(|&i| truth.is_fraud(i)).count() as f64;
    println!("fraud rate {:.4}", fraud / n);
    for m in [
        cr_synth::Mechanism::Undervaluation,
        cr_synth::Mechanism::Misclassification,
        cr_synth::Mechanism::OriginFraud,
        cr_synth::Mechanism::UndeclaredGoods,
    ] {
        let c = truth.mechanism.iter().filter(|x| **x == Some(m)).count() as f64;
        println!("  {:<18} {:.4}", m.as_str(), c / n);
    }
    let insp = b.inspected.iter().filter(|x| **x).count() as f64;
    let rule = truth.rule_hit.iter().filter(|x| **x).count() as f64;
    println!("inspected {:.4}  rule-hit {:.4}", insp / n, rule / n);
    let lab: Vec<bool> = b.label.iter().flatten().copied().collect();
    println!(
        "fraud among inspected {:.4}",
        lab.iter().filter(|x| **x).count() as f64 / lab.len().max(1) as f64
    );
    let imp_col = schema
        .categorical
        .iter()
        .position(|c| c.name == "importer")
        .unwrap_or(1);
    let mut imps: Vec<&String> = b.categorical[imp_col].iter().collect();
    imps.sort();
    imps.dedup();
    println!("distinct importers {}", imps.len());
    if let Some(path) = args.get(3) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut header = vec![
            "declaration_id".to_string(),
            "date".into(),
            "hs_code".into(),
        ];
        header.extend(schema.categorical.iter().map(|c| c.name.clone()));
        header.extend(schema.numeric.iter().map(|c| c.name.clone()));
        header.extend(
            [
                "fraud",
                "revenue_recovered",
                "inspected",
                "selection",
                "propensity",
                "true_fraud",
                "mechanism",
            ]
            .map(String::from),
        );
        writeln!(f, "{}", header.join(","))?;
        for i in 0..b.len() {
            write!(
                f,
                "{},{},{:06}",
                b.ids[i],
                cr_data::schema::ymd_from_days(b.dates[i]),
                b.hs[i]
            )?;
            for c in &b.categorical {
                write!(f, ",{}", c[i])?;
            }
            for c in &b.numeric {
                write!(f, ",{}", c[i])?;
            }
            let lab = b.label[i].map(|x| if x { "1" } else { "0" }).unwrap_or("");
            let rev = b.revenue[i].map(|x| x.to_string()).unwrap_or_default();
            let sel = b.selection[i].map(|s| s.as_str()).unwrap_or("");
            let p = b.propensity[i].map(|x| x.to_string()).unwrap_or_default();
            writeln!(
                f,
                ",{},{},{},{},{},{},{}",
                lab,
                rev,
                u8::from(b.inspected[i]),
                sel,
                p,
                u8::from(truth.is_fraud(i)),
                truth.mechanism[i].map(|m| m.as_str()).unwrap_or("")
            )?;
        }
    }
    Ok(())
}
