//! Timing harness used by `benches/explain/compare.py`: exact TreeSHAP of cr-infer.
//!
//! usage: explain_bench MODEL.onnx REF.bin N_REF X.bin N_ROWS N_FEATURES [--threads 1]
//!        [--repeat 5] [--out PHI.bin] [--table-entries N]
//!
//! `REF.bin` (the reference sample whose routing gives the node covers) and `X.bin` are
//! row-major little-endian f32. Prints `threads=1 median_s=... rows_per_s=... bias=...`
//! (median of `--repeat` runs after a warm-up) and optionally writes the contributions
//! (f64, `[N_ROWS, N_FEATURES]`) so the caller can check them against LightGBM.
//! `--table-entries 0` explains every tree by the plain recursion (no precomputed tables).

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
    let limit: usize = flag(
        &args,
        "--table-entries",
        &cr_infer::shap::DEFAULT_TABLE_ENTRIES.to_string(),
    )
    .parse()?;
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
    let scorer = model.native_scorer().ok_or("not natively compiled")?;
    let ex = pool.install(|| {
        Explainer::with_table_limit(
            scorer,
            Some(Reference {
                x: &reference,
                n_rows: n_ref,
            }),
            limit,
        )
    })?;
    let (tab, trees) = ex.tabulated_trees();
    let mut phi = vec![0f64; n * f];
    pool.install(|| ex.explain_into(&x, n, &mut phi))?; // warm-up
    let mut times = Vec::with_capacity(repeat);
    let mut cpu = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let c = cpu_seconds();
        pool.install(|| ex.explain_into(&x, n, &mut phi))?;
        cpu.push(cpu_seconds() - c);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    let med_cpu = cpu[cpu.len() / 2];
    println!(
        "threads={threads} tabulated={tab}/{trees} table_mib={:.1} median_s={med:.5} rows_per_s={:.0} \
         cpu_s={med_cpu:.5} rows_per_cpu_s={:.0} bias={:.17e}",
        ex.table_entries() as f64 * 8.0 / 1048576.0,
        n as f64 / med,
        n as f64 / med_cpu,
        ex.bias()
    );
    let out = flag(&args, "--out", "");
    if !out.is_empty() {
        let bytes: Vec<u8> = phi.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&out, bytes)?;
    }
    Ok(())
}

/// CPU seconds of this process (user + system, all threads) from `/proc/self/stat` (Linux;
/// 100 ticks/s); NaN elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // fields after the ")" of the command name: state is field 3, utime 14, stime 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}
