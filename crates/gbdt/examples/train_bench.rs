//! Benchmark driver used by `benches/gbdt/compare.py`: trains a binary model on a matrix file
//! and writes raw test predictions.
//!
//! Matrix file format (little endian): 8-byte magic `CRF32MAT`, u64 rows, u64 cols, then
//! `rows * cols` f32 row-major. Label files use the same format with one column.
//!
//! ```text
//! train_bench TRAIN_X TRAIN_Y TEST_X OUT_PRED [key=value ...]
//! keys: trees leaves bins lr threads min_data seed feature_fraction bagging_fraction bagging_freq
//! ```
//! Prints one JSON line with timings (seconds).

use std::io::{Read, Write};
use std::time::Instant;

use cr_gbdt::{train, GbdtParams};
use ndarray::Array2;

fn read_matrix(path: &str) -> Result<Array2<f32>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut head = [0u8; 24];
    f.read_exact(&mut head)
        .map_err(|e| format!("{path}: header: {e}"))?;
    if &head[..8] != b"CRF32MAT" {
        return Err(format!("{path}: bad magic"));
    }
    let rows = u64::from_le_bytes(head[8..16].try_into().map_err(|_| "header")?) as usize;
    let cols = u64::from_le_bytes(head[16..24].try_into().map_err(|_| "header")?) as usize;
    let mut bytes = vec![0u8; rows * cols * 4];
    f.read_exact(&mut bytes)
        .map_err(|e| format!("{path}: data: {e}"))?;
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    drop(bytes);
    Array2::from_shape_vec((rows, cols), data).map_err(|e| format!("{path}: {e}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: train_bench TRAIN_X TRAIN_Y TEST_X OUT_PRED [key=value ...]".into());
    }
    let mut p = GbdtParams::new()
        .num_trees(100)
        .num_leaves(63)
        .max_bin(255)
        .learning_rate(0.1)
        .num_threads(2);
    for kv in &args[5..] {
        let (k, v) = kv.split_once('=').ok_or(format!("bad arg {kv}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{k}: {e}");
        match k {
            "trees" => p.num_trees = v.parse().map_err(|e| bad(&e))?,
            "leaves" => p.num_leaves = v.parse().map_err(|e| bad(&e))?,
            "bins" => p.max_bin = v.parse().map_err(|e| bad(&e))?,
            "lr" => p.learning_rate = v.parse().map_err(|e| bad(&e))?,
            "threads" => p.num_threads = v.parse().map_err(|e| bad(&e))?,
            "min_data" => p.min_data_in_leaf = v.parse().map_err(|e| bad(&e))?,
            "seed" => p.seed = v.parse().map_err(|e| bad(&e))?,
            "feature_fraction" => p.feature_fraction = v.parse().map_err(|e| bad(&e))?,
            "bagging_fraction" => p.bagging_fraction = v.parse().map_err(|e| bad(&e))?,
            "bagging_freq" => p.bagging_freq = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown key {k}")),
        }
    }
    let t_load = Instant::now();
    let x = read_matrix(&args[1])?;
    let y = read_matrix(&args[2])?;
    let xt = read_matrix(&args[3])?;
    let load_s = t_load.elapsed().as_secs_f64();
    let y: Vec<f32> = y.iter().copied().collect();
    let t0 = Instant::now();
    let model = train(&p, x.view(), &y, None, None, None).map_err(|e| e.to_string())?;
    let train_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let pred = model.predict_raw(xt.view()).map_err(|e| e.to_string())?;
    let predict_s = t1.elapsed().as_secs_f64();
    let mut out = std::fs::File::create(&args[4]).map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = pred.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&bytes).map_err(|e| e.to_string())?;
    let s = model.train_stats;
    println!(
        "{{\"load_s\":{load_s:.4},\"train_s\":{train_s:.4},\"predict_s\":{predict_s:.4},\"binning_s\":{:.4},\"gradients_s\":{:.4},\"histogram_s\":{:.4},\"split_s\":{:.4},\"partition_s\":{:.4},\"other_s\":{:.4},\"trees\":{},\"leaves\":{}}}",
        s.binning_s,
        s.gradients_s,
        s.histogram_s,
        s.split_s,
        s.partition_s,
        s.other_s,
        model.num_trees(),
        model.trees.iter().map(|t| t.num_leaves()).sum::<usize>()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("train_bench: {e}");
        std::process::exit(2);
    }
}
