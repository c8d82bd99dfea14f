//! Hostile model files: models from our exporter (`customs-risk train`), onnxmltools
//! (LightGBM) and skl2onnx (scaler + logistic regression), mutated as bytes (bit flips,
//! truncations, splices) and as protobuf (a node's input or output dropped, an attribute's
//! type changed, an initializer's data cut short), then loaded and scored natively. Every
//! mutation must give `Ok` or an `Err`, never a panic (each load runs under `catch_unwind`,
//! so a panic is reported as a failure with its mutation). Errors about a node name it.
//!
//! And the binding of graph and metadata: our models' native path runs the pipeline from
//! the metadata, so an edited graph (or edited pipeline metadata) must never be scored
//! natively; with `--engine auto` ONNX Runtime scores it and says why.
//!
//! Bounded: the fixture (generate, train two models, two Python exports) takes ~10 s, the
//! property tests a fixed number of cases (~20 s in a debug build on 2 cores).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{cli_ok, generate, py_script, python};
use cr_infer::{DeclarationModel, Engine, InferError, InputKind, LoadOptions, Model};
use cr_onnx::proto::attribute_proto::AttributeType;
use cr_onnx::proto::ModelProto;
use proptest::prelude::*;

const FOREIGN_FEATURES: &str = "value,mass,quantity,tax_rate";

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    /// (name, file bytes): ours first (gbdt, logistic), then the foreign ones.
    models: Vec<(&'static str, Vec<u8>)>,
    /// A few rows to score, read with each of our models' schema.
    batch: cr_data::Batch,
}

fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let train = generate(d, "train.csv", 4_000, 21);
        let data = generate(d, "score.csv", 64, 22);
        let t = train.to_str().unwrap();
        for (algo, out) in [("gbdt", "gbdt"), ("logistic", "logistic")] {
            cli_ok(
                d,
                &[
                    "train",
                    "--data",
                    t,
                    "--algo",
                    algo,
                    "--out",
                    out,
                    "--trees",
                    "8",
                    "--leaves",
                    "7",
                    "--early-stopping",
                    "0",
                    "--threads",
                    "1",
                    // a small fixture file (19 seizures before the validation start): these
                    // tests are about model files, not about how much data a model needs
                    "--min-per-class",
                    "5",
                    "--quiet",
                ],
            );
        }
        python(
            d,
            &py_script("train_foreign.py"),
            &[t, d.to_str().unwrap(), FOREIGN_FEATURES],
        );
        let read = |n: &str| std::fs::read(d.join(n)).unwrap();
        let models = vec![
            ("gbdt", read("gbdt.onnx")),
            ("logistic", read("logistic.onnx")),
            ("lightgbm", read("lightgbm.onnx")),
            ("sklearn", read("sklearn.onnx")),
        ];
        let ours = DeclarationModel::load(&d.join("gbdt.onnx"), &native(1)).unwrap();
        let (batch, _) =
            cr_data::read_all(&data, ours.schema(), &cr_data::ReadOptions::default()).unwrap();
        // the unmutated models load and score natively
        for (name, bytes) in &models {
            let p = cr_onnx::decode(bytes).unwrap();
            load_and_score(&p, &batch).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        Fixture {
            _dir: dir,
            data,
            models,
            batch,
        }
    })
}

fn native(threads: usize) -> LoadOptions {
    LoadOptions {
        engine: Engine::Native,
        threads,
    }
}

/// Load `proto` natively as what it claims to be and score a few rows. `Ok(())` when it
/// loads and scores, else the error text.
fn load_and_score(proto: &ModelProto, batch: &cr_data::Batch) -> Result<(), String> {
    if cr_infer::is_declaration_model(proto) {
        let m = DeclarationModel::from_proto(proto, &native(1)).map_err(|e| e.to_string())?;
        // the schema in the metadata may have been mutated: score only a batch it fits
        if m.schema().categorical.len() == batch.categorical.len()
            && m.schema().numeric.len() == batch.numeric.len()
        {
            m.score_batch(batch).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let m = Model::from_proto(proto, &native(1)).map_err(|e| e.to_string())?;
    if let InputKind::Matrix { n_features, .. } = m.input_kind() {
        let n = 8;
        let f = (*n_features).min(1 << 12);
        let mut x: Vec<f32> = (0..n * f).map(|i| (i % 7) as f32 - 3.0).collect();
        x[0] = f32::NAN;
        m.score_matrix(&x, n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Decode, load and score `bytes` under `catch_unwind`; a panic is the test's failure.
fn survive(what: &str, bytes: &[u8]) -> Result<(), String> {
    let fx = fixture();
    let outcome = catch_unwind(AssertUnwindSafe(|| match cr_onnx::decode(bytes) {
        Err(e) => Err(e.to_string()),
        Ok(p) => load_and_score(&p, &fx.batch),
    }));
    match outcome {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: loading or scoring panicked: {msg}");
        }
    }
}

#[derive(Debug, Clone)]
enum ByteMutation {
    /// Flip bit `bit` of the byte at `at` (positions are fractions of the length, in 1/2^16).
    Flip {
        at: u32,
        bit: u8,
    },
    Truncate {
        at: u32,
    },
    /// Replace `len` bytes at `at` with bytes of model `from` at `src`.
    Splice {
        at: u32,
        len: u16,
        from: usize,
        src: u32,
    },
    /// Overwrite `len` bytes at `at` with `fill`.
    Overwrite {
        at: u32,
        len: u8,
        fill: u8,
    },
}

fn pos(frac: u32, len: usize) -> usize {
    ((frac as u64 * len as u64) >> 16) as usize
}

fn apply_bytes(bytes: &mut Vec<u8>, muts: &[ByteMutation], others: &[(&str, Vec<u8>)]) {
    for m in muts {
        let n = bytes.len();
        if n == 0 {
            return;
        }
        match *m {
            ByteMutation::Flip { at, bit } => bytes[pos(at, n).min(n - 1)] ^= 1 << (bit % 8),
            ByteMutation::Truncate { at } => bytes.truncate(pos(at, n)),
            ByteMutation::Splice { at, len, from, src } => {
                let o = &others[from % others.len()].1;
                let s = pos(src, o.len()).min(o.len());
                let piece = &o[s..(s + len as usize).min(o.len())];
                let a = pos(at, n).min(n);
                let end = (a + piece.len()).min(n);
                bytes.splice(a..end, piece.iter().copied());
            }
            ByteMutation::Overwrite { at, len, fill } => {
                let a = pos(at, n).min(n);
                let end = (a + len as usize).min(n);
                bytes[a..end].iter_mut().for_each(|b| *b = fill);
            }
        }
    }
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        4 => (any::<u16>(), any::<u8>()).prop_map(|(a, bit)| ByteMutation::Flip { at: a as u32, bit }),
        1 => any::<u16>().prop_map(|a| ByteMutation::Truncate { at: a as u32 }),
        2 => (any::<u16>(), 1u16..512, 0usize..4, any::<u16>()).prop_map(|(a, len, from, s)| {
            ByteMutation::Splice { at: a as u32, len, from, src: s as u32 }
        }),
        1 => (any::<u16>(), 1u8..64, any::<u8>())
            .prop_map(|(a, len, fill)| ByteMutation::Overwrite { at: a as u32, len, fill }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated bytes of real models never panic: Ok, or an error.
    #[test]
    fn mutated_bytes_never_panic(
        model in 0usize..4,
        muts in prop::collection::vec(byte_mutation(), 1..4),
    ) {
        let fx = fixture();
        let (name, orig) = &fx.models[model];
        let mut bytes = orig.clone();
        apply_bytes(&mut bytes, &muts, &fx.models);
        let _ = survive(&format!("{name} with {muts:?}"), &bytes);
    }
}

/// A change to one node, at the protobuf level.
#[derive(Debug, Clone)]
enum NodeMutation {
    DropInput(usize),
    DropOutput(usize),
    EmptyInput(usize),
    /// Declare attribute `k` as another type (its value fields unchanged).
    AttrType(usize, i32),
    /// Remove attribute `k`.
    DropAttr(usize),
    /// Cut the repeated values of attribute `k` (ints, floats, strings) to `len`.
    CutAttr(usize, usize),
    /// Cut the data of the initializer feeding input `k` to `len` values (its dims kept),
    /// or set its dims to `[len]`.
    CutTensor(usize, usize, bool),
}

/// Applies `m` to node `node` (taken modulo the node count); returns the node's index,
/// name and op_type.
fn apply_node(p: &mut ModelProto, node: usize, m: &NodeMutation) -> (usize, String, String) {
    let g = p.graph.as_mut().unwrap();
    let i = node % g.node.len();
    let n = &mut g.node[i];
    let who = (i, n.name().to_string(), n.op_type().to_string());
    let pick = |k: usize, len: usize| if len == 0 { None } else { Some(k % len) };
    match *m {
        NodeMutation::DropInput(k) => {
            if let Some(k) = pick(k, n.input.len()) {
                n.input.remove(k);
            }
        }
        NodeMutation::DropOutput(k) => {
            if let Some(k) = pick(k, n.output.len()) {
                n.output.remove(k);
            }
        }
        NodeMutation::EmptyInput(k) => {
            if let Some(k) = pick(k, n.input.len()) {
                n.input[k].clear();
            }
        }
        NodeMutation::AttrType(k, t) => {
            if let Some(k) = pick(k, n.attribute.len()) {
                n.attribute[k].r#type = Some(t);
            }
        }
        NodeMutation::DropAttr(k) => {
            if let Some(k) = pick(k, n.attribute.len()) {
                n.attribute.remove(k);
            }
        }
        NodeMutation::CutAttr(k, len) => {
            if let Some(k) = pick(k, n.attribute.len()) {
                let a = &mut n.attribute[k];
                a.ints.truncate(len);
                a.floats.truncate(len);
                a.strings.truncate(len);
            }
        }
        NodeMutation::CutTensor(k, len, dims) => {
            let Some(k) = pick(k, n.input.len()) else {
                return who;
            };
            let name = n.input[k].clone();
            if let Some(t) = g.initializer.iter_mut().find(|t| t.name() == name) {
                if dims {
                    t.dims = vec![len as i64];
                } else {
                    t.float_data.truncate(len);
                    t.int64_data.truncate(len);
                    t.string_data.truncate(len);
                    t.double_data.truncate(len);
                    if let Some(r) = t.raw_data.as_mut() {
                        r.truncate(len * 4 + len % 3);
                    }
                }
            }
        }
    }
    who
}

fn node_mutation() -> impl Strategy<Value = NodeMutation> {
    let attr_types = prop::sample::select(vec![
        AttributeType::Float as i32,
        AttributeType::Int as i32,
        AttributeType::String as i32,
        AttributeType::Tensor as i32,
        AttributeType::Floats as i32,
        AttributeType::Ints as i32,
        AttributeType::Strings as i32,
        0,
        99,
    ]);
    prop_oneof![
        3 => (0usize..8).prop_map(NodeMutation::DropInput),
        1 => (0usize..4).prop_map(NodeMutation::DropOutput),
        1 => (0usize..8).prop_map(NodeMutation::EmptyInput),
        3 => ((0usize..32), attr_types).prop_map(|(k, t)| NodeMutation::AttrType(k, t)),
        1 => (0usize..32).prop_map(NodeMutation::DropAttr),
        2 => ((0usize..32), (0usize..6)).prop_map(|(k, l)| NodeMutation::CutAttr(k, l)),
        2 => ((0usize..4), (0usize..6), any::<bool>()).prop_map(|(k, l, d)| NodeMutation::CutTensor(k, l, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Protobuf-level edits of one node: never a panic; an error caused by a dropped or
    /// emptied input or output, or an attribute of the wrong type, names the node.
    #[test]
    fn mutated_nodes_never_panic_and_errors_name_the_node(
        model in 0usize..4,
        node in 0usize..10_000,
        m in node_mutation(),
    ) {
        let fx = fixture();
        let (name, orig) = &fx.models[model];
        let mut p = cr_onnx::decode(orig).unwrap();
        let (index, node_name, op) = apply_node(&mut p, node, &m);
        let bytes = cr_onnx::encode(&p);
        let what = format!("{name}: node {index} {node_name:?} ({op}) {m:?}");
        if let Err(e) = survive(&what, &bytes) {
            let structural = matches!(
                m,
                NodeMutation::DropInput(_) | NodeMutation::DropOutput(_) | NodeMutation::EmptyInput(_)
            );
            // a malformed node is reported as that node (the digest of our models would
            // also catch the edit, but the node check comes first)
            if structural && !e.contains("graph or its pipeline metadata was changed") {
                prop_assert!(
                    e.contains(&format!("node {index} ")) || e.contains(&op),
                    "{what}: the error does not name the node: {e}"
                );
            }
        }
    }
}

/// Every two-input node of our models: with its second input deleted, the model is never
/// scored natively (the native path would ignore the pipeline nodes and score as before).
/// A node that needs two inputs is refused by the node check, naming it; one whose second
/// input is optional (`Squeeze` without `axes` is another, valid graph) by the digest; with
/// `Engine::Auto` the file is an error or ONNX Runtime scores it, saying why.
#[test]
fn deleting_an_input_of_any_two_input_node_is_never_scored_natively() {
    let fx = fixture();
    let auto = LoadOptions {
        engine: Engine::Auto,
        threads: 1,
    };
    for (name, bytes) in &fx.models[..2] {
        let orig = cr_onnx::decode(bytes).unwrap();
        let n_nodes = orig.graph.as_ref().unwrap().node.len();
        let (mut by_node, mut by_digest) = (0, 0);
        for i in 0..n_nodes {
            let node = &orig.graph.as_ref().unwrap().node[i];
            if node.input.len() != 2 {
                continue;
            }
            let mut p = orig.clone();
            p.graph.as_mut().unwrap().node[i].input.remove(1);
            let err = DeclarationModel::from_proto(&p, &native(1))
                .err()
                .unwrap_or_else(|| {
                    panic!("{name}: node {i} without its second input loads natively")
                });
            match err {
                InferError::Node {
                    index, ref op_type, ..
                } => {
                    assert_eq!(index, i, "{name}: {err}");
                    assert_eq!(op_type, node.op_type(), "{name}: {err}");
                    by_node += 1;
                }
                ref other if other.to_string().contains("changed after export") => by_digest += 1,
                other => panic!("{name}: node {i}: expected the node named, got {other}"),
            }
            if let Ok(m) = DeclarationModel::from_proto(&p, &auto) {
                assert_eq!(m.engine_used(), Engine::Ort, "{name}: node {i}");
                assert!(m.native_refused().is_some(), "{name}: node {i}");
            }
        }
        assert!(
            by_node + by_digest >= 20,
            "{name}: only {} two-input nodes",
            by_node + by_digest
        );
        assert!(by_node > by_digest, "{name}: {by_node} by the node check");
        eprintln!(
            "{name}: {} two-input nodes without their second input: {by_node} refused by the node check, {by_digest} by the digest",
            by_node + by_digest
        );
    }
}

/// A well-formed edit of the graph (operands of a two-input node swapped, a constant
/// changed) or of the pipeline metadata: the native engine refuses it, naming the digest;
/// `Engine::Auto` scores with ONNX Runtime and says why; `score` prints it.
#[test]
fn an_edited_graph_or_metadata_is_refused_natively_and_scored_by_onnx_runtime() {
    let fx = fixture();
    for (name, bytes) in &fx.models[..2] {
        let orig = cr_onnx::decode(bytes).unwrap();
        DeclarationModel::from_proto(&orig, &native(1)).expect("the exported model is native");
        let g = orig.graph.as_ref().unwrap();
        let mut swapped = 0;
        for i in 0..g.node.len() {
            if g.node[i].input.len() != 2 || g.node[i].input[0] == g.node[i].input[1] {
                continue;
            }
            let mut p = orig.clone();
            p.graph.as_mut().unwrap().node[i].input.swap(0, 1);
            let e = DeclarationModel::from_proto(&p, &native(1))
                .err()
                .unwrap_or_else(|| panic!("{name}: node {i} swapped loads natively"))
                .to_string();
            assert!(e.contains("changed after export"), "{name}: node {i}: {e}");
            swapped += 1;
        }
        assert!(swapped >= 20, "{name}: {swapped}");

        // metadata edited, graph untouched
        let mut p = orig.clone();
        let meta = p
            .metadata_props
            .iter_mut()
            .find(|m| m.key() == cr_model::meta::PIPELINE)
            .unwrap();
        // still the same pipeline as JSON, but not the bytes the digest covers
        meta.value = Some(format!("{} ", meta.value()));
        let e = DeclarationModel::from_proto(&p, &native(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed after export"), "{name}: {e}");

        // no digest (e.g. exported before it existed): not native either
        let mut p = orig.clone();
        p.metadata_props
            .retain(|m| m.key() != cr_model::meta::GRAPH_DIGEST_KEY);
        let e = DeclarationModel::from_proto(&p, &native(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains(cr_model::meta::GRAPH_DIGEST_KEY), "{name}: {e}");
    }

    // Auto: ONNX Runtime scores the edited graph, and says why
    let d = fx.data.parent().unwrap();
    let mut p = cr_onnx::decode(&fx.models[0].1).unwrap();
    let t = p
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.data_type == Some(1) && t.float_data.len() == 1)
        .expect("a scalar float constant");
    t.float_data[0] += 1.0;
    let edited = d.join("edited.onnx");
    cr_onnx::save_model(&edited, &p).unwrap();
    let m = DeclarationModel::load(
        &edited,
        &LoadOptions {
            engine: Engine::Auto,
            threads: 1,
        },
    )
    .unwrap();
    assert_eq!(m.engine_used(), Engine::Ort);
    assert!(m.native_refused().unwrap().contains("changed after export"));
    let out = d.join("edited_scores.csv");
    let stderr = cli_ok(
        d,
        &[
            "score",
            "--model",
            edited.to_str().unwrap(),
            "--data",
            fx.data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        stderr.contains("ONNX Runtime scored because the native engine refused the model")
            && stderr.contains("changed after export"),
        "{stderr}"
    );
}
