//! Timing harness used by `benches/explain/compare.py`: exact TreeSHAP of cr-infer.
//!
//! usage: explain_bench MODEL.onnx REF.bin N_REF X.bin N_ROWS N_FEATURES [--threads 1]
//!        [--repeat 5] [--out PHI.bin]
//!
//! `REF.bin` (the reference sample whose routing gives the node covers) and `X.bin` are
//! row-major little-endian f32. Prints `threads=1 median_s=... rows_per_s=... bias=...`
//! (median of `--repeat` runs after a warm-up) and optionally writes the contributions
//! (f64, `[N_ROWS, N_FEATURES]`) so the caller can check them against LightGBM.

use std::time::Instant;

use cr_infer::shap::{Explainer, Reference};
use cr_infer::{Engine, LoadOptions, Model};

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn read_f32(path: &str) -> Result<Vec<f32>, std::io::Error> {
    Ok(std::fs::read(path)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        return Err("usage: explain_bench MODEL.onnx REF.bin N_REF X.bin N_ROWS N_FEATURES [--threads 1] [--repeat 5] [--out PHI.bin]".into());
    }
    let n_ref: usize = args[3].parse()?;
    let n: usize = args[5].parse()?;
    let f: usize = args[6].parse()?;
    let threads: usize = flag(&args, "--threads", "1").parse()?;
    let repeat: usize = flag(&args, "--repeat", "5").parse()?;
    let reference = read_f32(&args[2])?;
    let x = read_f32(&args[4])?;
    if reference.len() != n_ref * f || x.len() != n * f {
        return Err("matrix sizes do not match N_REF / N_ROWS x N_FEATURES".into());
    }
    let model = Model::load(
        &args[1],
        &LoadOptions {
            engine: Engine::Native,
            threads,
        },
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let ex = pool.install(|| {
        Explainer::for_model(
            &model,
            Some(Reference {
                x: &reference,
                n_rows: n_ref,
            }),
        )
    })?;
    let mut phi = vec![0f64; n * f];
    pool.install(|| ex.explain_into(&x, n, &mut phi))?; // warm-up
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        pool.install(|| ex.explain_into(&x, n, &mut phi))?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!(
        "threads={threads} median_s={med:.5} rows_per_s={:.0} bias={:.17e}",
        n as f64 / med,
        ex.bias()
    );
    let out = flag(&args, "--out", "");
    if !out.is_empty() {
        let bytes: Vec<u8> = phi.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&out, bytes)?;
    }
    Ok(())
}
