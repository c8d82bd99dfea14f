//! Exact per-feature contributions (SHAP values) of a natively compiled model, in margin
//! (log-odds for binary classifiers) space, in f64.
//!
//! For each row: `bias + Σ_j φ_j = margin`, where `margin` is the value behind the score
//! before the model's final transform (`sigmoid(margin)` = the positive-class probability of
//! a LOGISTIC classifier), `bias` is the same for every row, and `φ_j` belongs to input
//! feature `j` of the scored tensor.
//!
//! - **Tree ensembles** (`TreeEnsembleClassifier`/`Regressor`, opset-5 `TreeEnsemble`; ours,
//!   LightGBM / XGBoost via onnxmltools, scikit-learn via skl2onnx): path-dependent TreeSHAP
//!   ([`tree`], Lundberg et al. 2020, Algorithm 2) over the compiled node arrays, routing
//!   every row exactly as the scoring kernels do (NaN, threshold ties). Node covers come
//!   from the file's `nodes_hitrates` (our exporter stores each node's training row count
//!   there, LightGBM's choice) or, given a [`Reference`] sample, from routing it through the
//!   trees (the only way for converters that write no covers). Without either: an error
//!   saying what to pass.
//! - **Linear models** (`LinearClassifier`/`Regressor`, `MatMul`/`Gemm` + `Add`; our
//!   logistic model): `φ_j = w_j · x'_j` with `x'` the pre-processed (imputed, standardised)
//!   value, `bias` = the intercept.
//!
//! Element-wise pre-processing (`Scaler`, `Imputer`, our signed log ...) maps input feature
//! `j` to tree / linear feature `j`, so contributions stay per input feature.
//!
//! Rows are explained in fixed chunks on the caller's rayon pool; each row's arithmetic is
//! sequential, so results are bit-identical for any thread count.
//!
//! ```no_run
//! use cr_infer::{Engine, LoadOptions, Model};
//! use cr_infer::shap::Explainer;
//! let model = Model::load("lgbm.onnx", &LoadOptions { engine: Engine::Native, threads: 1 })?;
//! let train = vec![0.0f32; 100 * 8]; // reference sample: the training rows
//! let scorer = model.native_scorer().expect("native");
//! let ex = Explainer::new(scorer, Some(cr_infer::shap::Reference { x: &train, n_rows: 100 }))?;
//! let phi = ex.explain_rows(&train[..8], 1)?; // 8 contributions; sum + ex.bias() = margin
//! # Ok::<(), cr_infer::InferError>(())
//! ```

pub(crate) mod fast;
#[cfg(test)]
mod tests;
pub(crate) mod tree;

pub use fast::DEFAULT_TABLE_ENTRIES;

use rayon::prelude::*;

use crate::error::{unsupported, InferError};
use crate::plan::{Core, NativeScorer, Prep};
use tree::{Covers, Scratch, TreeShap};

/// Rows per parallel task.
const CHUNK: usize = 64;

/// A sample of rows (row-major, the scored tensor's features, before pre-processing) whose
/// routing through the trees gives the node covers.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    pub x: &'a [f32],
    pub n_rows: usize,
}

/// Where the node covers of a tree explainer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverOrigin {
    /// The file's `nodes_hitrates` (training row counts written by our exporter).
    File,
    /// Routing this many reference rows.
    Reference { rows: usize },
    /// A linear model (no covers needed).
    Linear,
}

#[derive(Debug, Clone)]
enum Kind {
    Trees(TreeShap),
    Linear { coef: Vec<f64>, intercept: f64 },
}

/// Exact contributions of one compiled model (see the module docs). `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Explainer {
    n_features: usize,
    pre: Prep,
    kind: Kind,
    origin: CoverOrigin,
}

const SUPPORTED: &str = "explanations support tree ensembles (TreeEnsembleClassifier, \
    TreeEnsembleRegressor, TreeEnsemble) and linear models (LinearClassifier, LinearRegressor, \
    MatMul/Gemm + Add) that the native engine compiles";

impl Explainer {
    /// Build the explainer for `scorer`'s output column. Tree ensembles take their covers
    /// from `reference` when given, else from the file.
    pub fn new(
        scorer: &NativeScorer,
        reference: Option<Reference<'_>>,
    ) -> Result<Explainer, InferError> {
        Explainer::with_table_limit(scorer, reference, DEFAULT_TABLE_ENTRIES)
    }

    /// [`Explainer::new`] with at most `table_entries` precomputed table entries (f64 each;
    /// [`fast`]): trees beyond the bound are explained by the recursion, `0` explains every
    /// tree by it. The values agree to f64 rounding either way.
    pub fn with_table_limit(
        scorer: &NativeScorer,
        reference: Option<Reference<'_>>,
        table_entries: usize,
    ) -> Result<Explainer, InferError> {
        let nf = scorer.n_features;
        let (kind, origin) = match &scorer.core {
            Core::Trees(e) => match reference {
                Some(r) => {
                    if r.n_rows == 0 {
                        return Err(InferError::Input {
                            name: "reference".into(),
                            why: "the reference sample has no rows".into(),
                        });
                    }
                    if r.x.len() != r.n_rows * nf {
                        return Err(InferError::Input {
                            name: "reference".into(),
                            why: format!(
                                "{} values for {} rows x {nf} features",
                                r.x.len(),
                                r.n_rows
                            ),
                        });
                    }
                    let mut x = r.x.to_vec();
                    scorer.pre.apply(&mut x, r.n_rows);
                    let counts = tree::route_counts(e, &x, nf, r.n_rows);
                    (
                        Kind::Trees(TreeShap::new(
                            e,
                            scorer.column,
                            Covers::Counts(&counts),
                            table_entries,
                        )?),
                        CoverOrigin::Reference { rows: r.n_rows },
                    )
                }
                None => (
                    Kind::Trees(TreeShap::new(
                        e,
                        scorer.column,
                        Covers::File,
                        table_entries,
                    )?),
                    CoverOrigin::File,
                ),
            },
            Core::Linear(l) => {
                let (w, b) = l.margin_row(scorer.column).ok_or_else(|| {
                    unsupported(
                        format!(
                            "{} output column {} (not one linear score)",
                            l.op(),
                            scorer.column
                        ),
                        SUPPORTED,
                    )
                })?;
                (
                    Kind::Linear {
                        coef: w.iter().map(|&c| f64::from(c)).collect(),
                        intercept: f64::from(b),
                    },
                    CoverOrigin::Linear,
                )
            }
        };
        Ok(Explainer {
            n_features: nf,
            pre: scorer.pre.clone(),
            kind,
            origin,
        })
    }

    /// [`Explainer::new`] for a loaded [`crate::Model`]; a model the native engine does not
    /// compile (an MLP, a graph with unsupported ops) gets an error naming what is supported.
    pub fn for_model(
        model: &crate::Model,
        reference: Option<Reference<'_>>,
    ) -> Result<Explainer, InferError> {
        let scorer = model
            .native_scorer()
            .ok_or_else(|| unsupported("a model the native engine does not compile", SUPPORTED))?;
        Explainer::new(scorer, reference)
    }

    /// Load-time check of a whole graph: the error says what is supported when the graph is
    /// neither a tree ensemble nor a linear model.
    pub fn for_proto(
        proto: &cr_onnx::proto::ModelProto,
        tensor: Option<&str>,
        reference: Option<Reference<'_>>,
    ) -> Result<Explainer, InferError> {
        let scorer = match tensor {
            Some(t) => crate::plan::compile_for_tensor(proto, t),
            None => crate::plan::compile_native(proto),
        }
        .map_err(|e| unsupported(format!("this graph ({e})"), SUPPORTED))?;
        Explainer::new(&scorer, reference)
    }

    /// Features per row (one contribution each).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The expected margin (the same for every row).
    pub fn bias(&self) -> f64 {
        match &self.kind {
            Kind::Trees(t) => t.bias(),
            Kind::Linear { intercept, .. } => *intercept,
        }
    }

    pub fn cover_origin(&self) -> CoverOrigin {
        self.origin
    }

    /// Precomputed table entries (f64 each) over all tabulated trees.
    pub fn table_entries(&self) -> usize {
        match &self.kind {
            Kind::Trees(t) => t.table_entries(),
            Kind::Linear { .. } => 0,
        }
    }

    /// Trees explained by precomputed tables, and all trees (`(0, 0)` for linear models).
    pub fn tabulated_trees(&self) -> (usize, usize) {
        match &self.kind {
            Kind::Trees(t) => t.tabulated(),
            Kind::Linear { .. } => (0, 0),
        }
    }

    /// Contributions of `n_rows` row-major rows into `phi` (`n_rows x n_features`,
    /// overwritten), in parallel on the caller's rayon pool.
    pub fn explain_into(
        &self,
        x: &[f32],
        n_rows: usize,
        phi: &mut [f64],
    ) -> Result<(), InferError> {
        let nf = self.n_features;
        if x.len() != n_rows * nf {
            return Err(InferError::Input {
                name: "features".into(),
                why: format!("{} values for {n_rows} rows x {nf} features", x.len()),
            });
        }
        if phi.len() != n_rows * nf {
            return Err(InferError::Input {
                name: "contributions".into(),
                why: format!("{} slots for {n_rows} rows x {nf} features", phi.len()),
            });
        }
        if nf == 0 {
            return Ok(());
        }
        phi.par_chunks_mut(CHUNK * nf)
            .zip(x.par_chunks(CHUNK * nf))
            .for_each_init(
                || (Vec::<f32>::new(), Scratch::default()),
                |(xbuf, path), (pc, xc)| {
                    let rows = xc.len() / nf;
                    xbuf.clear();
                    xbuf.extend_from_slice(xc);
                    self.pre.apply(xbuf, rows);
                    pc.fill(0.0);
                    for (p, xr) in pc.chunks_exact_mut(nf).zip(xbuf.chunks_exact(nf)) {
                        self.row(xr, p, path);
                    }
                },
            );
        Ok(())
    }

    /// [`Self::explain_into`] into a new `n_rows x n_features` vector.
    pub fn explain_rows(&self, x: &[f32], n_rows: usize) -> Result<Vec<f64>, InferError> {
        let mut phi = vec![0.0; n_rows * self.n_features];
        self.explain_into(x, n_rows, &mut phi)?;
        Ok(phi)
    }

    /// One pre-processed row.
    fn row(&self, x: &[f32], phi: &mut [f64], path: &mut Scratch) {
        match &self.kind {
            Kind::Trees(t) => t.row(x, phi, path),
            Kind::Linear { coef, .. } => {
                for ((p, &v), &w) in phi.iter_mut().zip(x).zip(coef) {
                    *p = w * f64::from(v);
                }
            }
        }
    }
}
