//! Native linear models: `LinearClassifier`, `LinearRegressor` and plain `MatMul`/`Gemm`
//! (+ `Add`) graphs, with ONNX Runtime's arithmetic (`linearclassifier.cc`,
//! `linearregressor.cc`, `ml_common.h` `batched_update_scores_inplace`).
//!
//! Scores are `x . w_j` accumulated with fused multiply-adds in feature order (what MLAS'
//! SGEMM kernels do on FMA hardware) plus the intercept; results agree with ORT to ~1 ulp.

use cr_onnx::proto::NodeProto;
use cr_onnx::{node_label, Attrs};

use crate::error::{invalid, unsupported, InferError};
use crate::math::{mlas_logistic, ort_logistic, ort_probit, ort_softmax, ort_softmax_zero};
use crate::tree::PostTransform;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `LinearClassifier`; `add_second_class` when one score row and two labels.
    Classifier {
        add_second_class: bool,
    },
    Regressor,
    /// MatMul / Gemm (+ bias): raw scores.
    Raw,
}

/// A linear model compiled to dense row-major coefficients.
#[derive(Debug, Clone)]
pub struct CompiledLinear {
    op: String,
    kind: Kind,
    post: PostTransform,
    n_features: usize,
    n_scores: usize,
    /// `n_scores x n_features`, row-major.
    coef: Vec<f32>,
    /// `n_scores` values (zeros when absent).
    intercepts: Vec<f32>,
}

impl CompiledLinear {
    pub fn op(&self) -> &str {
        &self.op
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Output columns (2 for a binary `LinearClassifier` with one coefficient row).
    pub fn n_outputs(&self) -> usize {
        match self.kind {
            Kind::Classifier {
                add_second_class: true,
            } => 2,
            _ => self.n_scores,
        }
    }

    /// Coefficients and intercept of output column `column` where that column is one linear
    /// score before its post transform (the margin explanations decompose); `None` where it
    /// is not (softmax over several scores, the `1 - s` column of a one-row classifier).
    pub(crate) fn margin_row(&self, column: usize) -> Option<(&[f32], f32)> {
        let row = match self.kind {
            Kind::Classifier {
                add_second_class: true,
            } => (column == 1).then_some(0)?,
            Kind::Raw => column,
            Kind::Classifier { .. } | Kind::Regressor if self.n_scores == 1 => column,
            _ => return None,
        };
        if row >= self.n_scores {
            return None;
        }
        let f = self.n_features;
        Some((&self.coef[row * f..(row + 1) * f], self.intercepts[row]))
    }

    /// Compile `LinearClassifier` or `LinearRegressor`.
    pub fn from_node(node: &NodeProto) -> Result<CompiledLinear, InferError> {
        let a = Attrs::new(node);
        let label = node_label(node);
        let coef = a.floats("coefficients")?.to_vec();
        let intercepts = a
            .floats_opt("intercepts")?
            .map(<[f32]>::to_vec)
            .unwrap_or_default();
        let post = PostTransform::parse(&a.string_or("post_transform", "NONE")?);
        let (kind, n_scores) = match node.op_type() {
            "LinearClassifier" => {
                let n_scores = intercepts.len();
                let n_labels = match a.strings_opt("classlabels_strings")? {
                    Some(s) if !s.is_empty() => s.len(),
                    _ => a
                        .ints_opt("classlabels_ints")?
                        .map(<[i64]>::len)
                        .unwrap_or(0),
                };
                let add_second_class = n_scores == 1 && n_labels == 2;
                if add_second_class && post == PostTransform::Probit {
                    return Err(unsupported(
                        format!("{label}: one-row PROBIT classifier"),
                        "use Engine::Ort",
                    ));
                }
                (Kind::Classifier { add_second_class }, n_scores)
            }
            "LinearRegressor" => (Kind::Regressor, a.int_or("targets", 1)?.max(0) as usize),
            other => return Err(unsupported(other, "not a linear model")),
        };
        if n_scores == 0 || coef.is_empty() || coef.len() % n_scores != 0 {
            return Err(invalid(format!(
                "{label}: {} coefficients for {n_scores} score rows",
                coef.len()
            )));
        }
        let intercepts = match intercepts.len() {
            0 => vec![0.0; n_scores],
            k if k == n_scores => intercepts,
            k => {
                return Err(invalid(format!(
                    "{label}: {k} intercepts for {n_scores} score rows"
                )))
            }
        };
        Ok(CompiledLinear {
            op: node.op_type().to_string(),
            kind,
            post,
            n_features: coef.len() / n_scores,
            n_scores,
            coef,
            intercepts,
        })
    }

    /// Raw `x W + b` (MatMul/Gemm graphs). `w_rows` is `n_scores x n_features` row-major.
    pub(crate) fn raw(
        op: &str,
        n_features: usize,
        w_rows: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<CompiledLinear, InferError> {
        if n_features == 0 || !w_rows.len().is_multiple_of(n_features) {
            return Err(invalid(format!(
                "{op}: weights do not form a [{n_features}, k] matrix"
            )));
        }
        let n_scores = w_rows.len() / n_features;
        let intercepts = match bias.len() {
            0 => vec![0.0; n_scores],
            1 => vec![bias[0]; n_scores],
            k if k == n_scores => bias,
            k => return Err(invalid(format!("{op}: bias of {k} for {n_scores} outputs"))),
        };
        Ok(CompiledLinear {
            op: op.into(),
            kind: Kind::Raw,
            post: PostTransform::None,
            n_features,
            n_scores,
            coef: w_rows,
            intercepts,
        })
    }

    /// Output row `z` (length `n_outputs()`) for one input row.
    pub(crate) fn row(&self, x: &[f32], z: &mut [f32]) {
        let f = self.n_features;
        for ((zj, w), b) in z
            .iter_mut()
            .zip(self.coef.chunks_exact(f))
            .zip(&self.intercepts)
        {
            let mut acc = 0.0f32;
            for (a, c) in x.iter().zip(w) {
                acc = a.mul_add(*c, acc);
            }
            *zj = acc + b;
        }
        let n = self.n_scores;
        match self.kind {
            Kind::Raw => {}
            Kind::Classifier {
                add_second_class: true,
            } => {
                // One score row, two labels (checked against onnxruntime 1.31): LOGISTIC gives
                // [logistic(-s), logistic(s)] with ml_common's scalar logistic, else [1 - s, s].
                let s = z[0];
                if self.post == PostTransform::Logistic {
                    z[0] = ort_logistic(-s);
                    z[1] = ort_logistic(s);
                } else {
                    z[0] = 1.0 - s;
                    z[1] = s;
                }
            }
            Kind::Classifier { .. } | Kind::Regressor => {
                if n > 1 {
                    match self.post {
                        PostTransform::None => {}
                        PostTransform::Probit => {
                            z[..n].iter_mut().for_each(|v| *v = ort_probit(*v))
                        }
                        PostTransform::Logistic => {
                            z[..n].iter_mut().for_each(|v| *v = mlas_logistic(*v))
                        }
                        PostTransform::Softmax => ort_softmax(&mut z[..n]),
                        PostTransform::SoftmaxZero => ort_softmax_zero(&mut z[..n]),
                    }
                } else if self.post == PostTransform::Probit {
                    z[0] = ort_probit(z[0]);
                }
            }
        }
    }

    /// ORT's output matrix for `n_rows` row-major rows of `n_features` (sequential).
    pub fn predict(&self, x: &[f32], n_rows: usize, out: &mut [f32]) -> Result<(), InferError> {
        let f = self.n_features;
        let k = self.n_outputs();
        if x.len() != n_rows * f || out.len() != n_rows * k {
            return Err(InferError::Input {
                name: "X".into(),
                why: format!(
                    "{} values / {} outputs for {n_rows} rows x {f} features",
                    x.len(),
                    out.len()
                ),
            });
        }
        for (xr, zr) in x.chunks_exact(f).zip(out.chunks_exact_mut(k)) {
            self.row(xr, zr);
        }
        Ok(())
    }
}
