//! Load-time checks of a graph's nodes, before anything compiles them or opens an ONNX
//! Runtime session (tract's "load, check once, run many").
//!
//! For every node of an operator this module knows (the table in [`spec`]), in the default
//! domain or `ai.onnx.ml`:
//! - the number of inputs and outputs is within the operator's range over every opset
//!   (e.g. `Div` takes exactly 2 inputs, `Squeeze` 1 or 2, `Concat` at least 1);
//! - required inputs (the first `min` positions) are not the empty name ONNX uses for an
//!   omitted optional input;
//! - every attribute the operator defines has the declared type (`Cast.to` an int,
//!   `TreeEnsembleClassifier.nodes_values` floats, ...), and required attributes are present.
//!
//! **Invariant:** after [`check_graph`] the planner (`plan.rs`, `prep.rs`, `tree/`, `linear.rs`)
//! may index a known node's first `min` inputs and outputs without checking. Nodes of
//! operators not in the table are left to the native compiler (which refuses them) and to ONNX
//! Runtime's own checker. Every error names the node: its index in the graph, its name and
//! its op_type ([`InferError::Node`]).

use cr_onnx::proto::attribute_proto::AttributeType;
use cr_onnx::proto::{AttributeProto, GraphProto, NodeProto};

use crate::error::InferError;

/// Attribute types, as short names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum A {
    Int,
    Float,
    Str,
    Ints,
    Floats,
    Strs,
    Tensor,
}

impl A {
    fn proto(self) -> AttributeType {
        match self {
            A::Int => AttributeType::Int,
            A::Float => AttributeType::Float,
            A::Str => AttributeType::String,
            A::Ints => AttributeType::Ints,
            A::Floats => AttributeType::Floats,
            A::Strs => AttributeType::Strings,
            A::Tensor => AttributeType::Tensor,
        }
    }
}

/// What an operator accepts: inputs `ins.0..=ins.1`, outputs `outs.0..=outs.1`
/// (`usize::MAX`: variadic), typed attributes and the attributes it requires.
struct Spec {
    ins: (usize, usize),
    outs: (usize, usize),
    attrs: &'static [(&'static str, A)],
    required: &'static [&'static str],
}

const MANY: usize = usize::MAX;

const fn sp(
    ins: (usize, usize),
    outs: (usize, usize),
    attrs: &'static [(&'static str, A)],
) -> Spec {
    Spec {
        ins,
        outs,
        attrs,
        required: &[],
    }
}

const TREE_CLASSIC: &[(&str, A)] = &[
    ("nodes_treeids", A::Ints),
    ("nodes_nodeids", A::Ints),
    ("nodes_featureids", A::Ints),
    ("nodes_values", A::Floats),
    ("nodes_values_as_tensor", A::Tensor),
    ("nodes_hitrates", A::Floats),
    ("nodes_hitrates_as_tensor", A::Tensor),
    ("nodes_modes", A::Strs),
    ("nodes_truenodeids", A::Ints),
    ("nodes_falsenodeids", A::Ints),
    ("nodes_missing_value_tracks_true", A::Ints),
    ("class_treeids", A::Ints),
    ("class_nodeids", A::Ints),
    ("class_ids", A::Ints),
    ("class_weights", A::Floats),
    ("class_weights_as_tensor", A::Tensor),
    ("classlabels_strings", A::Strs),
    ("classlabels_int64s", A::Ints),
    ("target_treeids", A::Ints),
    ("target_nodeids", A::Ints),
    ("target_ids", A::Ints),
    ("target_weights", A::Floats),
    ("target_weights_as_tensor", A::Tensor),
    ("n_targets", A::Int),
    ("aggregate_function", A::Str),
    ("post_transform", A::Str),
    ("base_values", A::Floats),
    ("base_values_as_tensor", A::Tensor),
];

const TREE_V5: &[(&str, A)] = &[
    ("aggregate_function", A::Int),
    ("leaf_targetids", A::Ints),
    ("leaf_weights", A::Tensor),
    ("membership_values", A::Tensor),
    ("n_targets", A::Int),
    ("nodes_falseleafs", A::Ints),
    ("nodes_falsenodeids", A::Ints),
    ("nodes_featureids", A::Ints),
    ("nodes_hitrates", A::Tensor),
    ("nodes_missing_value_tracks_true", A::Ints),
    ("nodes_modes", A::Tensor),
    ("nodes_splits", A::Tensor),
    ("nodes_trueleafs", A::Ints),
    ("nodes_truenodeids", A::Ints),
    ("post_transform", A::Int),
    ("tree_roots", A::Ints),
];

const LINEAR: &[(&str, A)] = &[
    ("coefficients", A::Floats),
    ("intercepts", A::Floats),
    ("multi_class", A::Int),
    ("post_transform", A::Str),
    ("classlabels_strings", A::Strs),
    ("classlabels_ints", A::Ints),
    ("targets", A::Int),
];

const LABEL_ENCODER: &[(&str, A)] = &[
    ("keys_strings", A::Strs),
    ("keys_int64s", A::Ints),
    ("keys_floats", A::Floats),
    ("keys_tensor", A::Tensor),
    ("values_strings", A::Strs),
    ("values_int64s", A::Ints),
    ("values_floats", A::Floats),
    ("values_tensor", A::Tensor),
    ("default_string", A::Str),
    ("default_int64", A::Int),
    ("default_float", A::Float),
    ("default_tensor", A::Tensor),
];

/// The operators of the default domain this module checks.
fn spec_default(op: &str) -> Option<Spec> {
    const U: (usize, usize) = (1, 1);
    const B: (usize, usize) = (2, 2);
    const O: (usize, usize) = (1, 1);
    Some(match op {
        "Neg" | "Abs" | "Sign" | "Log" | "Exp" | "Sqrt" | "Reciprocal" | "Floor" | "Ceil"
        | "IsNaN" | "Not" | "Sigmoid" | "Identity" | "Relu" | "Tanh" | "Erf" | "Softplus"
        | "Shape" | "Size" | "NonZero" => sp(U, O, &[("start", A::Int), ("end", A::Int)]),
        "IsInf" => sp(
            U,
            O,
            &[("detect_negative", A::Int), ("detect_positive", A::Int)],
        ),
        "Add" | "Sub" | "Mul" | "Div" | "Greater" | "Less" | "Equal" | "GreaterOrEqual"
        | "LessOrEqual" | "And" | "Or" | "Xor" | "Pow" | "MatMul" | "StringConcat" | "CastLike" => {
            sp(B, O, &[("saturate", A::Int)])
        }
        "Mod" => sp(B, O, &[("fmod", A::Int)]),
        "Where" => sp((3, 3), O, &[]),
        "Cast" => Spec {
            required: &["to"],
            ..sp(U, O, &[("to", A::Int), ("saturate", A::Int)])
        },
        "Concat" => Spec {
            required: &["axis"],
            ..sp((1, MANY), O, &[("axis", A::Int)])
        },
        "Max" | "Min" | "Sum" | "Mean" => sp((1, MANY), O, &[]),
        "Gemm" => sp(
            (2, 3),
            O,
            &[
                ("alpha", A::Float),
                ("beta", A::Float),
                ("transA", A::Int),
                ("transB", A::Int),
            ],
        ),
        "Squeeze" | "Unsqueeze" => sp((1, 2), O, &[("axes", A::Ints)]),
        "Reshape" => sp(B, O, &[("allowzero", A::Int)]),
        "Flatten" => sp(U, O, &[("axis", A::Int)]),
        "Gather" => sp(B, O, &[("axis", A::Int)]),
        "Slice" => sp(
            (1, 5),
            O,
            &[("starts", A::Ints), ("ends", A::Ints), ("axes", A::Ints)],
        ),
        "Split" => sp(
            (1, 2),
            (1, MANY),
            &[
                ("axis", A::Int),
                ("split", A::Ints),
                ("num_outputs", A::Int),
            ],
        ),
        "Constant" => sp(
            (0, 0),
            O,
            &[
                ("value", A::Tensor),
                ("value_float", A::Float),
                ("value_floats", A::Floats),
                ("value_int", A::Int),
                ("value_ints", A::Ints),
                ("value_string", A::Str),
                ("value_strings", A::Strs),
            ],
        ),
        "Softmax" | "LogSoftmax" => sp(U, O, &[("axis", A::Int)]),
        "ArgMax" | "ArgMin" => sp(
            U,
            O,
            &[
                ("axis", A::Int),
                ("keepdims", A::Int),
                ("select_last_index", A::Int),
            ],
        ),
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" => sp(
            (1, 2),
            O,
            &[
                ("axes", A::Ints),
                ("keepdims", A::Int),
                ("noop_with_empty_axes", A::Int),
            ],
        ),
        "StringSplit" => sp(U, (1, 2), &[("delimiter", A::Str), ("maxsplit", A::Int)]),
        "RegexFullMatch" => sp(U, O, &[("pattern", A::Str)]),
        "StringNormalizer" => sp(
            U,
            O,
            &[
                ("case_change_action", A::Str),
                ("is_case_sensitive", A::Int),
                ("locale", A::Str),
                ("stopwords", A::Strs),
            ],
        ),
        _ => return None,
    })
}

/// The operators of `ai.onnx.ml` this module checks.
fn spec_ml(op: &str) -> Option<Spec> {
    const U: (usize, usize) = (1, 1);
    Some(match op {
        "TreeEnsembleClassifier" => sp(U, (2, 2), TREE_CLASSIC),
        "TreeEnsembleRegressor" => sp(U, (1, 1), TREE_CLASSIC),
        "TreeEnsemble" => sp(U, (1, 1), TREE_V5),
        "LinearClassifier" => Spec {
            required: &["coefficients"],
            ..sp(U, (2, 2), LINEAR)
        },
        "LinearRegressor" => Spec {
            required: &["coefficients"],
            ..sp(U, (1, 1), LINEAR)
        },
        "Scaler" => sp(U, (1, 1), &[("offset", A::Floats), ("scale", A::Floats)]),
        "Imputer" => sp(
            U,
            (1, 1),
            &[
                ("imputed_value_floats", A::Floats),
                ("imputed_value_int64s", A::Ints),
                ("replaced_value_float", A::Float),
                ("replaced_value_int64", A::Int),
            ],
        ),
        "ZipMap" => sp(
            U,
            (1, 1),
            &[
                ("classlabels_int64s", A::Ints),
                ("classlabels_strings", A::Strs),
            ],
        ),
        "LabelEncoder" => sp(U, (1, 1), LABEL_ENCODER),
        "Normalizer" => sp(U, (1, 1), &[("norm", A::Str)]),
        "Binarizer" => sp(U, (1, 1), &[("threshold", A::Float)]),
        "OneHotEncoder" => sp(
            U,
            (1, 1),
            &[
                ("cats_int64s", A::Ints),
                ("cats_strings", A::Strs),
                ("zeros", A::Int),
            ],
        ),
        "ArrayFeatureExtractor" => sp((2, 2), (1, 1), &[]),
        "FeatureVectorizer" => sp((1, MANY), (1, 1), &[("inputdimensions", A::Ints)]),
        "Cast" => sp(
            U,
            (1, 1),
            &[
                ("cast_to", A::Str),
                ("map_form", A::Str),
                ("max_map", A::Int),
            ],
        ),
        _ => return None,
    })
}

fn spec_of(node: &NodeProto) -> Option<Spec> {
    match node.domain() {
        "" | "ai.onnx" => spec_default(node.op_type()),
        "ai.onnx.ml" => spec_ml(node.op_type()),
        _ => None,
    }
}

/// The type an attribute holds: its declared `type`, or (old exporters omit it) the one
/// field that is set.
fn attr_type(a: &AttributeProto) -> Option<AttributeType> {
    match a.r#type.and_then(|t| AttributeType::try_from(t).ok()) {
        Some(AttributeType::Undefined) | None => {}
        t => return t,
    }
    let set = [
        (a.i.is_some(), AttributeType::Int),
        (a.f.is_some(), AttributeType::Float),
        (a.s.is_some(), AttributeType::String),
        (a.t.is_some(), AttributeType::Tensor),
        (!a.ints.is_empty(), AttributeType::Ints),
        (!a.floats.is_empty(), AttributeType::Floats),
        (!a.strings.is_empty(), AttributeType::Strings),
    ];
    let mut found = set.iter().filter(|(s, _)| *s).map(|(_, t)| *t);
    match (found.next(), found.next()) {
        (Some(t), None) => Some(t),
        _ => None,
    }
}

fn node_error(index: usize, node: &NodeProto, why: String) -> InferError {
    InferError::Node {
        index,
        name: node.name().to_string(),
        op_type: node.op_type().to_string(),
        why,
    }
}

fn count(range: (usize, usize)) -> String {
    match range {
        (a, b) if a == b => format!("{a}"),
        (a, MANY) => format!("at least {a}"),
        (a, b) => format!("{a} to {b}"),
    }
}

/// Check one node (`index`: its position in the graph).
pub(crate) fn check_node(index: usize, node: &NodeProto) -> Result<(), InferError> {
    let err = |why: String| node_error(index, node, why);
    if node.op_type().is_empty() {
        return Err(err("the node has no op_type".into()));
    }
    if node.output.is_empty() || node.output.iter().all(String::is_empty) {
        return Err(err("the node has no output".into()));
    }
    let Some(spec) = spec_of(node) else {
        return Ok(());
    };
    let (n_in, n_out) = (node.input.len(), node.output.len());
    if n_in < spec.ins.0 || n_in > spec.ins.1 {
        return Err(err(format!("takes {} inputs, has {n_in}", count(spec.ins))));
    }
    if n_out < spec.outs.0 || n_out > spec.outs.1 {
        return Err(err(format!(
            "makes {} outputs, has {n_out}",
            count(spec.outs)
        )));
    }
    if let Some(k) = node.input[..spec.ins.0].iter().position(String::is_empty) {
        return Err(err(format!("required input {k} is empty")));
    }
    if let Some(k) = node.output[..spec.outs.0].iter().position(String::is_empty) {
        return Err(err(format!("output {k} has no name")));
    }
    for a in &node.attribute {
        let Some(&(_, want)) = spec.attrs.iter().find(|(n, _)| *n == a.name()) else {
            continue;
        };
        let found = attr_type(a);
        if found != Some(want.proto()) {
            return Err(err(format!(
                "attribute {:?} is {} but {} was expected",
                a.name(),
                found.map_or("of no single type", |t| t.as_str_name()),
                want.proto().as_str_name()
            )));
        }
    }
    for r in spec.required {
        if !node.attribute.iter().any(|a| a.name() == *r) {
            return Err(err(format!("required attribute {r:?} is missing")));
        }
    }
    Ok(())
}

/// Check every node of `graph` (see the module docs).
pub(crate) fn check_graph(graph: &GraphProto) -> Result<(), InferError> {
    graph
        .node
        .iter()
        .enumerate()
        .try_for_each(|(i, n)| check_node(i, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cr_onnx::attr;
    use cr_onnx::proto::NodeProto;

    fn node(
        op: &str,
        domain: &str,
        ins: &[&str],
        outs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            domain: Some(domain.into()),
            name: Some(format!("n_{op}")),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..NodeProto::default()
        }
    }

    fn why(r: Result<(), InferError>) -> String {
        match r {
            Err(InferError::Node {
                index,
                name,
                op_type,
                why,
            }) => {
                format!("{index} {name} {op_type}: {why}")
            }
            other => panic!("expected a node error, got {other:?}"),
        }
    }

    #[test]
    fn arity_is_checked_and_the_node_named() {
        assert!(check_node(0, &node("Div", "", &["a", "b"], &["y"], vec![])).is_ok());
        assert_eq!(
            why(check_node(7, &node("Div", "", &["a"], &["y"], vec![]))),
            "7 n_Div Div: takes 2 inputs, has 1"
        );
        assert_eq!(
            why(check_node(
                3,
                &node("Where", "", &["c", "a"], &["y"], vec![])
            )),
            "3 n_Where Where: takes 3 inputs, has 2"
        );
        assert_eq!(
            why(check_node(0, &node("Div", "", &["a", ""], &["y"], vec![]))),
            "0 n_Div Div: required input 1 is empty"
        );
        assert_eq!(
            why(check_node(
                0,
                &node(
                    "TreeEnsembleClassifier",
                    "ai.onnx.ml",
                    &["x"],
                    &["l"],
                    vec![]
                )
            )),
            "0 n_TreeEnsembleClassifier TreeEnsembleClassifier: makes 2 outputs, has 1"
        );
        assert!(check_node(
            0,
            &node("Concat", "", &[], &["y"], vec![attr::int("axis", 1)])
        )
        .is_err());
        // unknown operators are left to the compiler and ONNX Runtime
        assert!(check_node(0, &node("Frobnicate", "", &[], &["y"], vec![])).is_ok());
        assert!(check_node(0, &node("Add", "", &["a", "b"], &[], vec![])).is_err());
    }

    #[test]
    fn attribute_types_are_checked() {
        let ok = node("Cast", "", &["x"], &["y"], vec![attr::int("to", 1)]);
        assert!(check_node(0, &ok).is_ok());
        assert_eq!(
            why(check_node(
                1,
                &node("Cast", "", &["x"], &["y"], vec![attr::float("to", 1.0)])
            )),
            "1 n_Cast Cast: attribute \"to\" is FLOAT but INT was expected"
        );
        assert_eq!(
            why(check_node(1, &node("Cast", "", &["x"], &["y"], vec![]))),
            "1 n_Cast Cast: required attribute \"to\" is missing"
        );
        let t = node(
            "TreeEnsembleRegressor",
            "ai.onnx.ml",
            &["x"],
            &["y"],
            vec![attr::ints("nodes_values", vec![1, 2])],
        );
        assert!(why(check_node(2, &t)).contains("\"nodes_values\" is INTS but FLOATS"));
    }
}
