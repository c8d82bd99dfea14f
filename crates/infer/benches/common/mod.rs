//! A LightGBM-like synthetic binary classifier for the small-batch benchmarks: `N_TREES`
//! trees of `N_LEAVES` leaves (random shapes, grown by splitting a random leaf), thresholds
//! from 255 bins per feature (so most of the 6,200 internal nodes are distinct tests, as in
//! a real boosted model), `LOGISTIC` post-transform; and random rows with some NaN.

use cr_infer::{compile_tree_node, CompiledEnsemble};
use cr_onnx::builder::attr;
use cr_onnx::proto::NodeProto;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const N_TREES: usize = 100;
pub const N_LEAVES: usize = 63;
pub const N_FEATURES: usize = 30;
const BINS: usize = 255;

fn bin(f: usize, b: usize) -> f32 {
    (f as f32 + 1.0) * (b as f32 / BINS as f32 - 0.5)
}

pub fn model(seed: u64) -> CompiledEnsemble {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut tree_ids, mut node_ids, mut feats, mut modes, mut vals) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut trues, mut falses, mut miss) = (vec![], vec![], vec![]);
    let (mut c_tree, mut c_node, mut c_id, mut c_w) = (vec![], vec![], vec![], vec![]);
    for t in 0..N_TREES {
        // node i: None = leaf, Some((feature, bin, true child, false child))
        let mut nodes: Vec<Option<(usize, usize, usize, usize)>> = vec![None];
        let mut leaves = vec![0usize];
        while leaves.len() < N_LEAVES {
            let i = leaves.swap_remove(rng.random_range(0..leaves.len()));
            let (a, b) = (nodes.len(), nodes.len() + 1);
            nodes.push(None);
            nodes.push(None);
            leaves.extend([a, b]);
            nodes[i] = Some((
                rng.random_range(0..N_FEATURES),
                rng.random_range(0..BINS),
                a,
                b,
            ));
        }
        for (i, n) in nodes.iter().enumerate() {
            tree_ids.push(t as i64);
            node_ids.push(i as i64);
            match *n {
                Some((f, b, a, c)) => {
                    feats.push(f as i64);
                    modes.push("BRANCH_LEQ");
                    vals.push(bin(f, b));
                    trues.push(a as i64);
                    falses.push(c as i64);
                    miss.push(i64::from(rng.random_bool(0.5)));
                }
                None => {
                    feats.push(0);
                    modes.push("LEAF");
                    vals.push(0.0);
                    trues.push(0);
                    falses.push(0);
                    miss.push(0);
                    c_tree.push(t as i64);
                    c_node.push(i as i64);
                    c_id.push(0);
                    c_w.push(rng.random_range(-0.1f32..0.1));
                }
            }
        }
    }
    let node = NodeProto {
        op_type: Some("TreeEnsembleClassifier".into()),
        domain: Some("ai.onnx.ml".into()),
        attribute: vec![
            attr::ints("nodes_treeids", tree_ids),
            attr::ints("nodes_nodeids", node_ids),
            attr::ints("nodes_featureids", feats),
            attr::strings("nodes_modes", &modes),
            attr::floats("nodes_values", vals),
            attr::ints("nodes_truenodeids", trues),
            attr::ints("nodes_falsenodeids", falses),
            attr::ints("nodes_missing_value_tracks_true", miss),
            attr::ints("class_treeids", c_tree),
            attr::ints("class_nodeids", c_node),
            attr::ints("class_ids", c_id),
            attr::floats("class_weights", c_w),
            attr::ints("classlabels_int64s", vec![0, 1]),
            attr::string("post_transform", "LOGISTIC"),
        ],
        ..Default::default()
    };
    match compile_tree_node(&node) {
        Ok(e) => e,
        Err(e) => panic!("bench model does not compile: {e}"),
    }
}

/// `n` row-major rows of `N_FEATURES` values, ~3% NaN.
pub fn rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * N_FEATURES)
        .map(|k| {
            if rng.random_range(0..32) == 0 {
                f32::NAN
            } else {
                let f = (k % N_FEATURES) as f32 + 1.0;
                rng.random_range(-0.6 * f..0.6 * f)
            }
        })
        .collect()
}
