//! [`Model`]: load and check once, score many times (tract's load -> model -> runnable).

use std::collections::BTreeMap;
use std::path::Path;

use cr_onnx::proto::ModelProto;
use cr_onnx::{metadata_map, value_info_dims, value_info_elem_type, Dim, ElemType};
use rayon::prelude::*;

use crate::error::{InferError, ORT_HINT};
use crate::input::{InputColumn, InputKind};
use crate::ort_engine::OrtEngine;
use crate::plan::{compile_native, NativeScorer};

/// Which engine scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Native when the graph compiles, ONNX Runtime otherwise.
    #[default]
    Auto,
    /// ONNX Runtime only.
    Ort,
    /// The native evaluator only (errors for graphs it does not support).
    Native,
}

/// How to load a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    pub engine: Engine,
    /// Worker threads for scoring; 0 = all available cores.
    pub threads: usize,
}

/// Rows per parallel task of the native engine (fixed, so results and their order never
/// depend on the thread count).
const NATIVE_CHUNK: usize = 4096;

/// A loaded, checked model.
pub struct Model {
    engine: Engine,
    metadata: BTreeMap<String, String>,
    input_kind: InputKind,
    native: Option<NativeScorer>,
    ort: Option<OrtEngine>,
    pool: rayon::ThreadPool,
    threads: usize,
    feature_names: Option<Vec<String>>,
    native_refused: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("engine", &self.engine)
            .field("input_kind", &self.input_kind)
            .field("threads", &self.threads)
            .finish()
    }
}

fn input_kind(model: &ModelProto) -> Result<InputKind, InferError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| InferError::InvalidModel("model has no graph".into()))?;
    let inits: std::collections::BTreeSet<&str> =
        graph.initializer.iter().map(|t| t.name()).collect();
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name()))
        .collect();
    if inputs.is_empty() {
        return Err(InferError::InvalidModel("the graph has no inputs".into()));
    }
    if let [only] = inputs.as_slice() {
        let dims = value_info_dims(only).unwrap_or_default();
        if value_info_elem_type(only) == Some(ElemType::F32) && dims.len() == 2 {
            let n_features = match dims[1] {
                Dim::Known(f) if f > 0 => f as usize,
                _ => 0, // filled in from the compiled core when known
            };
            return Ok(InputKind::Matrix {
                n_features,
                input_name: only.name().to_string(),
            });
        }
    }
    inputs
        .iter()
        .map(|i| {
            value_info_elem_type(i)
                .map(|e| (i.name().to_string(), e))
                .ok_or_else(|| InferError::Unsupported {
                    op: format!(
                        "input {:?} of a non-tensor or unsupported element type",
                        i.name()
                    ),
                    hint: "inputs must be float, double, int64 or string tensors".into(),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(InputKind::NamedColumns)
}

impl Model {
    /// Read, check and prepare `path` for scoring.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Model, InferError> {
        let model = cr_onnx::load_model(path.as_ref())?;
        Model::from_proto(&model, opts)
    }

    /// Like [`Model::load`] from a decoded model.
    ///
    /// The native engine compiles graphs with one float matrix input `[N, F]`; a graph with
    /// several named inputs runs on ONNX Runtime (our raw-field models natively through
    /// [`crate::DeclarationModel`], which runs their feature pipeline in Rust).
    pub fn from_proto(model: &ModelProto, opts: &LoadOptions) -> Result<Model, InferError> {
        let metadata = metadata_map(model);
        if let Some(g) = &model.graph {
            crate::check::check_graph(g)?;
        }
        let mut input_kind = input_kind(model)?;
        let threads = match opts.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            t => t,
        };
        let native_result = match &input_kind {
            InputKind::NamedColumns(_) if metadata.contains_key(cr_model::meta::PIPELINE) => {
                Err(InferError::Unsupported {
                    op: "a raw-field model with an embedded feature pipeline".into(),
                    hint: "load it with DeclarationModel (feature pipeline in Rust, core native), \
                           or use ONNX Runtime (Engine::Ort / Engine::Auto)"
                        .into(),
                })
            }
            InputKind::NamedColumns(_) => Err(InferError::Unsupported {
                op: "a model with several named inputs".into(),
                hint: "use ONNX Runtime (Engine::Ort / Engine::Auto)".into(),
            }),
            InputKind::Matrix { .. } => compile_native(model),
        };
        let mut native_refused = None;
        let (engine, native, ort) = match opts.engine {
            Engine::Native => (Engine::Native, Some(native_result?), None),
            Engine::Ort => (Engine::Ort, None, Some(OrtEngine::new(model, threads)?)),
            Engine::Auto => match native_result {
                Ok(s) => (Engine::Native, Some(s), None),
                Err(native_err) => match OrtEngine::new(model, threads) {
                    Ok(o) => {
                        native_refused = Some(native_err.to_string());
                        (Engine::Ort, None, Some(o))
                    }
                    Err(InferError::Runtime(ort_err)) => {
                        return Err(InferError::Unsupported {
                            op: format!("native engine: {native_err}"),
                            hint: format!(
                            "this graph needs ONNX Runtime, which failed: {ort_err}; {ORT_HINT}"
                        ),
                        })
                    }
                    Err(e) => return Err(e),
                },
            },
        };
        if let (InputKind::Matrix { n_features, .. }, Some(s)) = (&mut input_kind, &native) {
            if *n_features == 0 {
                *n_features = s.n_features();
            }
        }
        // Always a pool of our own, also for one thread: outside `install`, rayon's parallel
        // iterators would run on the global pool (all cores) whatever `threads` says.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cr-infer-{i}"))
            .build()
            .map_err(|e| {
                InferError::Runtime(format!("cannot start {threads} scoring threads: {e}"))
            })?;
        // A one-feature matrix model can take its single column by the input's name.
        let feature_names = match &input_kind {
            InputKind::Matrix {
                n_features: 1,
                input_name,
            } => Some(vec![input_name.clone()]),
            _ => None,
        };
        Ok(Model {
            engine,
            metadata,
            input_kind,
            native,
            ort,
            pool,
            threads,
            feature_names,
            native_refused,
        })
    }

    /// The engine actually used (`Native` or `Ort`; never `Auto`).
    pub fn engine_used(&self) -> Engine {
        self.engine
    }

    /// With [`Engine::Auto`] and ONNX Runtime scoring: why the native engine was not used.
    pub fn native_refused(&self) -> Option<&str> {
        self.native_refused.as_deref()
    }

    /// The model's `metadata_props`.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn input_kind(&self) -> &InputKind {
        &self.input_kind
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The compiled native path, when the native engine is used.
    pub fn native_scorer(&self) -> Option<&NativeScorer> {
        self.native.as_ref()
    }

    /// For a matrix-input model: the column names, in feature order, that `score_columns`
    /// assembles the matrix from.
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Model, InferError> {
        match &self.input_kind {
            InputKind::Matrix { n_features, .. } if *n_features == names.len() => {
                self.feature_names = Some(names);
                Ok(self)
            }
            InputKind::Matrix { n_features, .. } => Err(InferError::Input {
                name: "feature_names".into(),
                why: format!("{} names for {n_features} features", names.len()),
            }),
            InputKind::NamedColumns(_) => Err(InferError::Input {
                name: "feature_names".into(),
                why: "the model takes named inputs, not a matrix".into(),
            }),
        }
    }

    fn run<F>(&self, f: F) -> Result<(), InferError>
    where
        F: FnOnce() -> Result<(), InferError> + Send,
    {
        self.pool.install(f)
    }

    /// Positive-class probability (binary classifiers) or regression value for each of the
    /// `n_rows` row-major rows of `x` (`n_rows x n_features`).
    pub fn score_matrix(&self, x: &[f32], n_rows: usize) -> Result<Vec<f32>, InferError> {
        let (nf, input) = match &self.input_kind {
            InputKind::Matrix {
                n_features,
                input_name,
            } => (*n_features, input_name.as_str()),
            InputKind::NamedColumns(_) => {
                return Err(InferError::Input {
                    name: "X".into(),
                    why: "the model takes named columns; use score_columns".into(),
                })
            }
        };
        if x.len() != n_rows * nf {
            return Err(InferError::Input {
                name: input.to_string(),
                why: format!("{} values for {n_rows} rows x {nf} features", x.len()),
            });
        }
        let mut out = vec![0.0f32; n_rows];
        if n_rows == 0 {
            return Ok(out);
        }
        if let Some(s) = &self.native {
            self.run(|| {
                out.par_chunks_mut(NATIVE_CHUNK)
                    .zip(x.par_chunks(NATIVE_CHUNK * nf))
                    .try_for_each(|(o, xc)| s.score_into(xc, o.len(), o))
            })?;
        } else if let Some(o) = &self.ort {
            let chunk = OrtEngine::chunk_rows();
            self.run(|| {
                out.par_chunks_mut(chunk)
                    .zip(x.par_chunks(chunk * nf))
                    .try_for_each(|(oc, xc)| o.score_matrix_chunk(input, xc, nf, oc))
            })?;
        }
        Ok(out)
    }

    /// Score named columns (each of length `n_rows`). Matrix models need
    /// [`Model::with_feature_names`]; raw-field models get their columns by input name.
    pub fn score_columns(
        &self,
        cols: &[(String, InputColumn)],
        n_rows: usize,
    ) -> Result<Vec<f32>, InferError> {
        for (name, c) in cols {
            if c.len() != n_rows {
                return Err(InferError::Input {
                    name: name.clone(),
                    why: format!("{} values, expected {n_rows}", c.len()),
                });
            }
        }
        if let InputKind::Matrix { n_features, .. } = &self.input_kind {
            let names = self.feature_names.as_ref().ok_or_else(|| InferError::Input {
                name: "feature_names".into(),
                why: "this model takes one float matrix; call Model::with_feature_names first or use score_matrix".into(),
            })?;
            let mut x = vec![0.0f32; n_rows * n_features];
            for (j, name) in names.iter().enumerate() {
                let col = cols
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, c)| c)
                    .ok_or_else(|| InferError::Input {
                        name: name.clone(),
                        why: "missing column".into(),
                    })?;
                match col {
                    InputColumn::F32(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(r, &val)| x[r * n_features + j] = val),
                    InputColumn::I64(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(r, &val)| x[r * n_features + j] = val as f32),
                    InputColumn::Str(_) => {
                        return Err(InferError::Input {
                            name: name.clone(),
                            why: "a feature column must be numeric".into(),
                        })
                    }
                }
            }
            return self.score_matrix(&x, n_rows);
        }
        let mut out = vec![0.0f32; n_rows];
        if n_rows == 0 {
            return Ok(out);
        }
        if let Some(o) = &self.ort {
            let chunk = OrtEngine::chunk_rows();
            self.run(|| {
                out.par_chunks_mut(chunk)
                    .enumerate()
                    .try_for_each(|(k, oc)| {
                        o.score_columns_chunk(cols, k * chunk..k * chunk + oc.len(), oc)
                    })
            })?;
        } else {
            return Err(InferError::Unsupported {
                op: "named-column scoring without ONNX Runtime".into(),
                hint: ORT_HINT.into(),
            });
        }
        Ok(out)
    }
}
