//! CPU-time harness for the native tree kernels (on a shared, noisy machine CPU time is the
//! steadier number).
//!
//! usage: tree_bench MODEL.onnx X.bin N_ROWS N_FEATURES [--repeat 15] [--threads 1]
//!
//! `X.bin`: row-major little-endian f32 (as written by `benches/infer/compare.py`). Scores the
//! matrix natively `--repeat` times after a warm-up and prints the median wall time and the
//! median CPU time of the process (all threads, from `/proc/self/task/*/schedstat`, ns), rows/s
//! by each, and an FNV-1a checksum of the score bits. `CR_INFER_KERNEL=scalar|bitvec|avx2|
//! avx512` picks the kernel.

use std::time::Instant;

use cr_infer::{Engine, LoadOptions, Model};

/// CPU time of all threads of this process, in seconds (Linux; 0 elsewhere).
fn cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ns = 0u64;
    for e in dir.flatten() {
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 * 1e-9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err(
            "usage: tree_bench MODEL.onnx X.bin N_ROWS N_FEATURES [--repeat 15] [--threads 1]"
                .into(),
        );
    }
    let flag = |f: &str, d: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or(d.into())
    };
    let n_rows: usize = args[3].parse()?;
    let n_features: usize = args[4].parse()?;
    let repeat: usize = flag("--repeat", "15").parse()?;
    let threads: usize = flag("--threads", "1").parse()?;
    let bytes = std::fs::read(&args[2])?;
    if bytes.len() != n_rows * n_features * 4 {
        return Err(format!(
            "{}: {} bytes, expected {n_rows} x {n_features} f32",
            args[2],
            bytes.len()
        )
        .into());
    }
    let x: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let model = Model::load(
        &args[1],
        &LoadOptions {
            engine: Engine::Native,
            threads,
        },
    )?;
    let mut scores = model.score_matrix(&x, n_rows)?;
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (c0, t0) = (cpu_s(), Instant::now());
        scores = model.score_matrix(&x, n_rows)?;
        wall.push(t0.elapsed().as_secs_f64());
        cpu.push(cpu_s() - c0);
    }
    let (w, c) = (median(wall), median(cpu));
    let sum = scores.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
    });
    println!(
        "kernel={} threads={threads} wall_s={w:.5} cpu_s={c:.5} rows_per_s_wall={:.0} rows_per_s_cpu={:.0} checksum={sum:016x}",
        std::env::var("CR_INFER_KERNEL").unwrap_or_else(|_| "auto".into()),
        n_rows as f64 / w,
        n_rows as f64 / c
    );
    Ok(())
}
