use cr_features::{fit, CompiledPipeline, FittedPipeline, PipelineConfig};

use crate::common::{schema, synthetic};

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

#[test]
fn serde_round_trip_gives_identical_transform_output() {
    let s = schema();
    let train = synthetic(3_000, 21, 60);
    let score = synthetic(5_000, 22, 0);
    let (p, _) = fit(&s, &train, &PipelineConfig::default()).expect("fit");
    let json = p.to_json();
    let back = FittedPipeline::from_json(&json).expect("load");
    assert_eq!(
        back, p,
        "every f32 table value survives the JSON round trip"
    );
    assert_eq!(back.to_json(), json);
    let a = p.transform(&score).expect("a");
    let b = back.transform(&score).expect("b");
    assert!(a.bit_eq(&b));
    assert_eq!(a.names, p.feature_names());
    // transform of the same batch twice is identical
    let compiled = back.compile().expect("compile");
    assert!(compiled
        .transform(&score)
        .expect("c")
        .bit_eq(&compiled.transform(&score).expect("d")));
}

#[test]
fn fit_and_transform_are_deterministic_across_runs_and_thread_counts() {
    let s = schema();
    let train = synthetic(6_000, 31, 50);
    let score = synthetic(7_000, 32, 0);
    let cfg = PipelineConfig::default();
    let (p1, x1) = in_pool(1, || fit(&s, &train, &cfg)).expect("fit 1");
    let (p2, x2) = in_pool(2, || fit(&s, &train, &cfg)).expect("fit 2");
    let (p3, x3) = in_pool(3, || fit(&s, &train, &cfg)).expect("fit 3");
    assert_eq!(p1.to_json(), p2.to_json());
    assert_eq!(p1.to_json(), p3.to_json());
    assert!(x1.bit_eq(&x2) && x1.bit_eq(&x3));
    let t1 = in_pool(1, || p1.transform(&score)).expect("t1");
    let t2 = in_pool(4, || p1.transform(&score)).expect("t2");
    assert!(t1.bit_eq(&t2));
    // Another seed: other folds, so other out-of-fold features, but the same final tables.
    let (p4, x4) = fit(&s, &train, &PipelineConfig { seed: 7, ..cfg }).expect("fit 4");
    assert_eq!(p4.to_json(), p1.to_json());
    assert!(!x4.bit_eq(&x1));
}

#[test]
fn json_keeps_every_f32_bit_exactly() {
    let mut g = crate::common::Gen(12345);
    let mut vals = Vec::new();
    while vals.len() < 200_000 {
        let v = f32::from_bits(g.next() as u32);
        if v.is_finite() {
            vals.push(v);
        }
    }
    vals.extend([
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        1e-45,
        0.1,
        1.0 / 3.0,
        16_777_217.0,
    ]);
    let json = serde_json::to_string(&vals).expect("ser");
    let back: Vec<f32> = serde_json::from_str(&json).expect("de");
    for (a, b) in vals.iter().zip(&back) {
        assert_eq!(a.to_bits(), b.to_bits(), "{a:e}");
    }
}

#[test]
fn compiled_pipeline_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CompiledPipeline>();
    check::<FittedPipeline>();
}

/// `transform_rows` on any row block gives the same bits as those rows of `transform`, and
/// rejects out-of-range blocks, ragged buffers and over-long HS codes in its rows.
#[test]
fn transform_rows_blocks_equal_the_whole_transform() {
    let s = schema();
    let (p, _) = fit(&s, &synthetic(3_000, 31, 60), &PipelineConfig::default()).expect("fit");
    let c = p.compile().expect("compile");
    let mut score = synthetic(2_500, 32, 0);
    let whole = c.transform(&score).expect("whole");
    let nf = whole.n_cols;
    for block in [1usize, 7, 1000, 2500] {
        let mut got = Vec::new();
        for start in (0..score.len()).step_by(block) {
            let mut buf = vec![0f32; block.min(score.len() - start) * nf];
            c.transform_rows(&score, start, &mut buf).expect("block");
            got.extend(buf);
        }
        assert!(
            got.iter()
                .zip(&whole.data)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "block {block}"
        );
        assert_eq!(got.len(), whole.data.len());
    }
    assert!(
        c.transform_rows(&score, 2_400, &mut vec![0f32; 101 * nf])
            .is_err(),
        "past the end"
    );
    assert!(
        c.transform_rows(&score, 0, &mut vec![0f32; nf + 1])
            .is_err(),
        "ragged buffer"
    );
    score.hs[10] = 12_345_678;
    assert!(
        c.transform_rows(&score, 0, &mut vec![0f32; 10 * nf])
            .is_ok(),
        "bad HS outside the rows"
    );
    let err = c
        .transform_rows(&score, 5, &mut vec![0f32; 10 * nf])
        .unwrap_err();
    assert!(err.to_string().contains("12345678"), "{err}");
}
