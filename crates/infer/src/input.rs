//! Inputs: generic named columns or one float matrix.

use cr_onnx::ElemType;

/// One named input column, fed to ONNX Runtime as an `[N, 1]` tensor (or `[N]` when the
/// model declares rank 1).
#[derive(Debug, Clone, PartialEq)]
pub enum InputColumn {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

impl InputColumn {
    pub fn len(&self) -> usize {
        match self {
            InputColumn::F32(v) => v.len(),
            InputColumn::I64(v) => v.len(),
            InputColumn::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem_type(&self) -> ElemType {
        match self {
            InputColumn::F32(_) => ElemType::F32,
            InputColumn::I64(_) => ElemType::I64,
            InputColumn::Str(_) => ElemType::Str,
        }
    }
}

/// What a model expects as input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// One float tensor `[N, n_features]`: call [`crate::Model::score_matrix`] (or
    /// `score_columns` after [`crate::Model::with_feature_names`]).
    Matrix {
        n_features: usize,
        input_name: String,
    },
    /// Several named inputs, each `[N, 1]` (or `[N]`): call [`crate::Model::score_columns`].
    NamedColumns(Vec<(String, ElemType)>),
}
