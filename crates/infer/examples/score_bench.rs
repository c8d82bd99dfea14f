//! Timing harness used by `benches/infer/compare.py`.
//!
//! usage: score_bench MODEL.onnx X.bin N_ROWS N_FEATURES [--threads 1,2] [--engines native,ort]
//!        [--repeat 5] [--out scores_prefix]
//!
//! `X.bin` is row-major little-endian f32. Prints one line per (engine, threads):
//! `engine=native threads=1 median_s=0.81234 rows_per_s=1231000` (median of `--repeat` runs,
//! after one warm-up run), and optionally writes the scores of each engine to
//! `PREFIX.ENGINE.bin` so the caller can check agreement.

use std::time::Instant;

use cr_infer::{Engine, LoadOptions, Model};

fn arg_list(args: &[String], flag: &str, default: &str) -> Vec<String> {
    let v = args
        .iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or(default);
    v.split(',').map(str::to_string).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: score_bench MODEL.onnx X.bin N_ROWS N_FEATURES [--threads 1,2] [--engines native,ort] [--repeat 5] [--out PREFIX]".into());
    }
    let (model_path, x_path) = (&args[1], &args[2]);
    let n_rows: usize = args[3].parse()?;
    let n_features: usize = args[4].parse()?;
    let threads: Vec<usize> = arg_list(&args, "--threads", "1")
        .iter()
        .map(|t| t.parse())
        .collect::<Result<_, _>>()?;
    let engines = arg_list(&args, "--engines", "native,ort");
    let repeat: usize = arg_list(&args, "--repeat", "5")[0].parse()?;
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();

    let bytes = std::fs::read(x_path)?;
    if bytes.len() != n_rows * n_features * 4 {
        return Err(format!(
            "{x_path}: {} bytes, expected {n_rows} x {n_features} f32",
            bytes.len()
        )
        .into());
    }
    let x: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();

    for engine_name in &engines {
        let engine = match engine_name.as_str() {
            "native" => Engine::Native,
            "ort" => Engine::Ort,
            other => return Err(format!("unknown engine {other}").into()),
        };
        for &t in &threads {
            let model = Model::load(model_path, &LoadOptions { engine, threads: t })?;
            let mut scores = model.score_matrix(&x, n_rows)?; // warm-up
            let mut times = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let start = Instant::now();
                scores = model.score_matrix(&x, n_rows)?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "engine={engine_name} threads={t} median_s={median:.5} rows_per_s={:.0}",
                n_rows as f64 / median
            );
            if let (Some(prefix), 1) = (&out, t) {
                let b: Vec<u8> = scores.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(format!("{prefix}.{engine_name}.bin"), b)?;
            }
        }
    }
    Ok(())
}
