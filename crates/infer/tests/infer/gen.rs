//! Random tree ensembles built with the cr-onnx builder (the ONNX side of the property tests).

use cr_onnx::proto::ModelProto;
use cr_onnx::{attr, Dim, ElemType, GraphBuilder, ModelBuilder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Values thresholds and inputs are drawn from, so inputs hit thresholds exactly.
pub const GRID: [f32; 9] = [-2.0, -1.0, -0.5, -0.1, 0.0, 0.25, 0.5, 1.0, 3.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Binary classifier; `classes`: 0 = weights only for class 0, 1 = only class 1,
    /// 2 = every leaf has weights for both classes.
    Binary {
        classes: u8,
        n_base: usize,
        positive: bool,
    },
    Regressor {
        n_targets: usize,
        n_base: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub head: Head,
    pub n_trees: usize,
    pub max_depth: usize,
    pub n_features: usize,
    /// Split modes to draw from.
    pub modes: Vec<&'static str>,
    pub post: &'static str,
    pub aggregate: &'static str,
    pub missing_prob: f64,
}

struct Node {
    id: i64,
    mode: &'static str,
    feature: i64,
    value: f32,
    t: i64,
    f: i64,
    missing: i64,
}

fn grow(
    rng: &mut impl Rng,
    cfg: &Config,
    depth: usize,
    next_id: &mut i64,
    out: &mut Vec<Node>,
) -> i64 {
    let id = *next_id;
    *next_id += 1;
    let pos = out.len();
    let leaf = depth >= cfg.max_depth || (depth > 0 && rng.random_bool(0.3));
    out.push(Node {
        id,
        mode: "LEAF",
        feature: 0,
        value: 0.0,
        t: 0,
        f: 0,
        missing: 0,
    });
    if !leaf {
        let mode = cfg.modes[rng.random_range(0..cfg.modes.len())];
        let feature = rng.random_range(0..cfg.n_features) as i64;
        let value = GRID[rng.random_range(0..GRID.len())];
        let missing = i64::from(rng.random_bool(cfg.missing_prob));
        let t = grow(rng, cfg, depth + 1, next_id, out);
        let f = grow(rng, cfg, depth + 1, next_id, out);
        out[pos] = Node {
            id,
            mode,
            feature,
            value,
            t,
            f,
            missing,
        };
    }
    id
}

/// A model `X [N, n_features] -> TreeEnsemble{Classifier,Regressor}` (ZipMap-free).
pub fn ensemble_model(seed: u64, cfg: &Config) -> ModelProto {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut treeids, mut nodeids, mut feats, mut vals, mut modes, mut tids, mut fids, mut miss) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let (mut w_tree, mut w_node, mut w_id, mut w_val) = (vec![], vec![], vec![], vec![]);
    for tree in 0..cfg.n_trees {
        let mut nodes = Vec::new();
        let mut next = 0i64;
        grow(&mut rng, cfg, 0, &mut next, &mut nodes);
        // renumber ids with a random permutation; keep the root first, shuffle the rest
        let mut perm: Vec<i64> = (0..next).collect();
        perm.shuffle(&mut rng);
        let mut order: Vec<usize> = (1..nodes.len()).collect();
        order.shuffle(&mut rng);
        order.insert(0, 0);
        for &k in &order {
            let n = &nodes[k];
            treeids.push(tree as i64);
            nodeids.push(perm[n.id as usize]);
            feats.push(n.feature);
            vals.push(n.value);
            modes.push(n.mode);
            let leaf = n.mode == "LEAF";
            tids.push(if leaf { 0 } else { perm[n.t as usize] });
            fids.push(if leaf { 0 } else { perm[n.f as usize] });
            miss.push(n.missing);
            if leaf {
                let mut w = |slot: i64, rng: &mut rand_chacha::ChaCha8Rng, positive: bool| {
                    w_tree.push(tree as i64);
                    w_node.push(perm[n.id as usize]);
                    w_id.push(slot);
                    let v: f32 = rng.random_range(-1.0f32..1.0);
                    w_val.push(if positive { v.abs() } else { v });
                };
                match cfg.head {
                    Head::Binary {
                        classes: 2,
                        positive,
                        ..
                    } => {
                        w(0, &mut rng, positive);
                        w(1, &mut rng, positive);
                    }
                    Head::Binary {
                        classes, positive, ..
                    } => w(i64::from(classes), &mut rng, positive),
                    Head::Regressor { n_targets, .. } => {
                        for s in 0..n_targets {
                            w(s as i64, &mut rng, false);
                        }
                    }
                }
            }
        }
    }
    let mut g = GraphBuilder::new("random_trees");
    g.add_input(
        "X",
        ElemType::F32,
        &[Dim::batch(), Dim::Known(cfg.n_features as i64)],
    );
    let mut attrs = vec![
        attr::ints("nodes_treeids", treeids),
        attr::ints("nodes_nodeids", nodeids),
        attr::ints("nodes_featureids", feats),
        attr::floats("nodes_values", vals),
        attr::strings("nodes_modes", &modes),
        attr::ints("nodes_truenodeids", tids),
        attr::ints("nodes_falsenodeids", fids),
        attr::ints("nodes_missing_value_tracks_true", miss),
        attr::string("post_transform", cfg.post),
    ];
    let base = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| {
        (0..n)
            .map(|_| rng.random_range(-0.5f32..0.5))
            .collect::<Vec<_>>()
    };
    match cfg.head {
        Head::Binary { n_base, .. } => {
            attrs.push(attr::ints("classlabels_int64s", vec![0, 1]));
            attrs.push(attr::ints("class_treeids", w_tree));
            attrs.push(attr::ints("class_nodeids", w_node));
            attrs.push(attr::ints("class_ids", w_id));
            attrs.push(attr::floats("class_weights", w_val));
            if n_base > 0 {
                attrs.push(attr::floats("base_values", base(n_base, &mut rng)));
            }
            g.add_node(
                "TreeEnsembleClassifier",
                "ai.onnx.ml",
                &["X"],
                &["label", "probabilities"],
                attrs,
            );
            g.add_output("label", ElemType::I64, &[Dim::batch()]);
            g.add_output(
                "probabilities",
                ElemType::F32,
                &[Dim::batch(), Dim::Known(2)],
            );
        }
        Head::Regressor { n_targets, n_base } => {
            attrs.push(attr::int("n_targets", n_targets as i64));
            attrs.push(attr::ints("target_treeids", w_tree));
            attrs.push(attr::ints("target_nodeids", w_node));
            attrs.push(attr::ints("target_ids", w_id));
            attrs.push(attr::floats("target_weights", w_val));
            attrs.push(attr::string("aggregate_function", cfg.aggregate));
            if n_base > 0 {
                attrs.push(attr::floats("base_values", base(n_base, &mut rng)));
            }
            g.add_node(
                "TreeEnsembleRegressor",
                "ai.onnx.ml",
                &["X"],
                &["variable"],
                attrs,
            );
            g.add_output(
                "variable",
                ElemType::F32,
                &[Dim::batch(), Dim::Known(n_targets as i64)],
            );
        }
    }
    ModelBuilder::new(g.build()).build()
}

/// Rows with values from the grid, NaN and the normal distribution.
pub fn inputs(rng: &mut impl Rng, n_rows: usize, n_features: usize) -> Vec<f32> {
    (0..n_rows * n_features)
        .map(|_| match rng.random_range(0..10) {
            0 => f32::NAN,
            1..=6 => GRID[rng.random_range(0..GRID.len())],
            _ => rng.random_range(-3.0f32..3.0),
        })
        .collect()
}
