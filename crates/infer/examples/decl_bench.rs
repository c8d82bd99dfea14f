//! Timing harness for [`cr_infer::DeclarationModel::score_batch`] (feature pipeline + core).
//!
//! usage: decl_bench MODEL.onnx DATA.csv [--threads 1,2] [--repeat 3] [--batch-rows 16384]
//!        [--engine native|ort]
//!
//! Reads the whole file once (validated), then per thread count times, on a pool of that
//! many threads: the feature pipeline alone and `score_batch` (features + core), on the file
//! as one batch and in `--batch-rows` batches (what `customs-risk score` feeds it). Prints
//! medians of `--repeat` runs after a warm-up, and checksums of the features and scores so
//! two builds can be checked to give identical output.

use std::path::Path;
use std::time::Instant;

use cr_data::{Batch, ReadOptions};
use cr_infer::{DeclarationModel, Engine, LoadOptions};

fn arg(args: &[String], flag: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f(); // warm-up
    let mut ts = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        out = f();
        ts.push(t.elapsed().as_secs_f64());
    }
    (median(ts), out)
}

/// FNV-1a over the bit patterns.
fn checksum(v: &[f32]) -> u64 {
    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: decl_bench MODEL.onnx DATA.csv [--threads 1,2] [--repeat 3] [--batch-rows 16384] [--engine native|ort]".into());
    }
    let threads: Vec<usize> = arg(&args, "--threads", "1,2")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let repeat: usize = arg(&args, "--repeat", "3").parse()?;
    let batch_rows: usize = arg(&args, "--batch-rows", "16384").parse()?;
    let engine = match arg(&args, "--engine", "native").as_str() {
        "ort" => Engine::Ort,
        _ => Engine::Native,
    };
    let model = DeclarationModel::load(Path::new(&args[1]), &LoadOptions { engine, threads: 1 })?;
    let opts = ReadOptions {
        batch_rows,
        ..ReadOptions::default()
    };
    let t = Instant::now();
    let mut reader = cr_data::open(Path::new(&args[2]), model.schema(), &opts)?;
    let mut batches: Vec<Batch> = Vec::new();
    for chunk in &mut reader {
        batches.push(chunk?.batch);
    }
    let mut whole = Batch::empty(model.schema(), "whole");
    for b in &batches {
        whole.extend(b.clone());
    }
    let n = whole.len();
    eprintln!(
        "read {n} rows in {} batches in {:.2}s; engine {:?}",
        batches.len(),
        t.elapsed().as_secs_f64(),
        model.engine_used()
    );
    for &th in &threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(th).build()?;
        pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let (s_feat, x) = time(repeat, || model.pipeline().transform(&whole));
            let x = x?;
            let (s_whole, scores) = time(repeat, || model.score_batch(&whole));
            let scores = scores?;
            let (s_feat_b, _) = time(repeat, || batches.iter().map(|b| model.pipeline().transform(b).map(|m| m.data.len())).sum::<Result<usize, _>>());
            let (s_batched, bs) = time(repeat, || -> Result<Vec<f32>, cr_infer::InferError> {
                let mut all = Vec::with_capacity(n);
                for b in &batches {
                    all.extend(model.score_batch(b)?);
                }
                Ok(all)
            });
            let bs = bs?;
            assert!(bs.iter().zip(&scores).all(|(a, b)| a.to_bits() == b.to_bits()), "batched scores differ");
            let r = |s: f64| n as f64 / s / 1e6;
            println!(
                "threads={th} features_whole={:.3}M/s score_whole={:.3}M/s features_batched={:.3}M/s score_batched={:.3}M/s \
                 features_checksum={:016x} scores_checksum={:016x}",
                r(s_feat),
                r(s_whole),
                r(s_feat_b),
                r(s_batched),
                checksum(&x.data),
                checksum(&scores)
            );
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
