//! Instruction-count harness for small scoring calls (run under `valgrind --tool=callgrind`):
//! scores `CALLS` batches of `ROWS` rows with the 100-tree x 63-leaf model of
//! `benches/common` on one thread. The per-call cost is the difference of the totals of two
//! runs with different `CALLS`, divided by the difference of `CALLS`.
//!
//! usage: small_batch_calls ROWS CALLS

#[path = "../benches/common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: small_batch_calls ROWS CALLS".into());
    }
    let (n, calls): (usize, usize) = (args[1].parse()?, args[2].parse()?);
    let model = common::model(7);
    let x = common::rows(n, 11);
    let mut out = vec![0f32; n];
    let mut h = 0u64;
    for _ in 0..calls {
        model.predict_column(&x, common::N_FEATURES, n, 1, &mut out)?;
        h = out.iter().fold(h, |h, v| {
            (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
        });
    }
    println!("rows={n} calls={calls} checksum={h:016x}");
    Ok(())
}
