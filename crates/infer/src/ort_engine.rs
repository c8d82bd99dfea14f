//! The ONNX Runtime path (`ort` 2.0.0-rc.15, library loaded at run time from
//! `ORT_DYLIB_PATH`).
//!
//! `Session::run` takes `&mut self`, so the engine keeps one session per worker thread, each
//! with one intra-op thread; parallelism comes from running row chunks on our rayon pool.
//! A trailing `ZipMap` is stripped in memory before the session is created, so classifier
//! probabilities come back as a plain float tensor.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock};

use cr_onnx::proto::ModelProto;
use cr_onnx::{value_info_dims, value_info_elem_type, ElemType};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorRef};

use crate::error::{InferError, ORT_HINT};
use crate::input::InputColumn;
use crate::plan::{select_score_output, strip_zipmap};

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

fn rt(e: impl std::fmt::Display) -> InferError {
    InferError::Runtime(e.to_string())
}

/// The process-wide ORT environment, loading the library on first use.
pub(crate) fn environment() -> Result<&'static Environment, InferError> {
    ENV.get_or_init(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH")
            .ok_or_else(|| "ORT_DYLIB_PATH is not set".to_string())?;
        let p = std::path::Path::new(&path);
        if !p.exists() {
            return Err(format!("ORT_DYLIB_PATH={} does not exist", p.display()));
        }
        ort::init_from(p)
            .map_err(|e| e.to_string())?
            .with_name("customs-risk")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| InferError::Runtime(format!("ONNX Runtime is not available ({e}); {ORT_HINT}")))
}

/// Whether ONNX Runtime can be loaded in this process.
pub fn ort_available() -> bool {
    environment().is_ok()
}

#[derive(Debug, Clone)]
pub(crate) struct OrtInput {
    pub name: String,
    pub elem: ElemType,
    pub rank: usize,
}

pub(crate) struct OrtEngine {
    sessions: Vec<Mutex<Session>>,
    output: String,
    pub inputs: Vec<OrtInput>,
}

impl std::fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtEngine")
            .field("sessions", &self.sessions.len())
            .field("output", &self.output)
            .finish()
    }
}

/// Rows per `Session::run` call.
const CHUNK: usize = 16_384;

impl OrtEngine {
    pub(crate) fn new(model: &ModelProto, n_sessions: usize) -> Result<OrtEngine, InferError> {
        let env = environment()?;
        let mut model = model.clone();
        strip_zipmap(&mut model);
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| InferError::InvalidModel("model has no graph".into()))?;
        let output = select_score_output(graph)?;
        let inits: std::collections::BTreeSet<&str> =
            graph.initializer.iter().map(|t| t.name()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !inits.contains(i.name()))
            .map(|i| {
                let elem = value_info_elem_type(i).ok_or_else(|| InferError::Unsupported {
                    op: format!(
                        "input {:?} of a non-tensor or unsupported element type",
                        i.name()
                    ),
                    hint: "inputs must be float, double, int64 or string tensors".into(),
                })?;
                Ok(OrtInput {
                    name: i.name().to_string(),
                    elem,
                    rank: value_info_dims(i).map(|d| d.len()).unwrap_or(2),
                })
            })
            .collect::<Result<Vec<_>, InferError>>()?;
        let bytes = cr_onnx::encode(&model);
        let mut sessions = Vec::with_capacity(n_sessions.max(1));
        for _ in 0..n_sessions.max(1) {
            let mut b = Session::builder(env)
                .map_err(rt)?
                .with_intra_threads(1)
                .map_err(rt)?
                .with_inter_threads(1)
                .map_err(rt)?
                .with_optimization_level(GraphOptimizationLevel::All)
                .map_err(rt)?;
            sessions.push(Mutex::new(b.commit_from_memory(&bytes).map_err(rt)?));
        }
        Ok(OrtEngine {
            sessions,
            output,
            inputs,
        })
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>, InferError> {
        let i = rayon::current_thread_index().unwrap_or(0) % self.sessions.len();
        self.sessions[i]
            .lock()
            .map_err(|_| InferError::Runtime("an ONNX Runtime session panicked earlier".into()))
    }

    /// Copy the score column of the run's output into `out`.
    fn extract(
        &self,
        outputs: &ort::session::SessionOutputs<'_>,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        let n = out.len();
        let value = outputs.get(self.output.as_str()).ok_or_else(|| {
            InferError::Runtime(format!("output {:?} missing from the run", self.output))
        })?;
        let (shape, data): (Vec<i64>, Vec<f32>) = match value.try_extract_tensor::<f32>() {
            Ok((s, d)) => (s.to_vec(), d.to_vec()),
            Err(_) => {
                let (s, d) = value.try_extract_tensor::<f64>().map_err(rt)?;
                (s.to_vec(), d.iter().map(|&v| v as f32).collect())
            }
        };
        let cols = match shape.as_slice() {
            [r] if *r as usize == n => 1,
            [r, c] if *r as usize == n => *c as usize,
            s => {
                return Err(InferError::Runtime(format!(
                    "output {:?} has shape {s:?} for {n} rows",
                    self.output
                )))
            }
        };
        let col = match cols {
            1 => 0,
            2 => 1,
            k => {
                return Err(InferError::Unsupported {
                    op: format!("output {:?} with {k} columns (multi-class)", self.output),
                    hint: "one score per row needs a binary classifier or a regressor".into(),
                })
            }
        };
        for (r, o) in out.iter_mut().enumerate() {
            *o = data[r * cols + col];
        }
        Ok(())
    }

    /// Score `x` (`n_rows x n_features`, row-major) through the single matrix input.
    pub(crate) fn score_matrix_chunk(
        &self,
        input: &str,
        x: &[f32],
        n_features: usize,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        let n = out.len();
        let t = TensorRef::from_array_view(([n as i64, n_features as i64], x)).map_err(rt)?;
        let mut s = self.session()?;
        let inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            vec![(Cow::Borrowed(input), t.into())];
        let outputs = s.run(inputs).map_err(rt)?;
        self.extract(&outputs, out)
    }

    pub(crate) fn chunk_rows() -> usize {
        CHUNK
    }

    /// Score rows `range` of named columns.
    pub(crate) fn score_columns_chunk(
        &self,
        cols: &[(String, InputColumn)],
        range: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> Result<(), InferError> {
        let n = range.len();
        let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(self.inputs.len());
        for inp in &self.inputs {
            let col = cols
                .iter()
                .find(|(name, _)| *name == inp.name)
                .map(|(_, c)| c)
                .ok_or_else(|| InferError::Input {
                    name: inp.name.clone(),
                    why: "the model needs this input column".into(),
                })?;
            let shape: Vec<i64> = if inp.rank == 1 {
                vec![n as i64]
            } else {
                vec![n as i64, 1]
            };
            let bad = |why: &str| InferError::Input {
                name: inp.name.clone(),
                why: why.to_string(),
            };
            let v: SessionInputValue<'_> = match (inp.elem, col) {
                (ElemType::F32, InputColumn::F32(v)) => {
                    Tensor::from_array((shape, v[range.clone()].to_vec()))
                        .map_err(rt)?
                        .into()
                }
                (ElemType::F32, InputColumn::I64(v)) => Tensor::from_array((
                    shape,
                    v[range.clone()]
                        .iter()
                        .map(|&x| x as f32)
                        .collect::<Vec<f32>>(),
                ))
                .map_err(rt)?
                .into(),
                (ElemType::F64, InputColumn::F32(v)) => Tensor::from_array((
                    shape,
                    v[range.clone()]
                        .iter()
                        .map(|&x| f64::from(x))
                        .collect::<Vec<f64>>(),
                ))
                .map_err(rt)?
                .into(),
                (ElemType::F64, InputColumn::I64(v)) => Tensor::from_array((
                    shape,
                    v[range.clone()]
                        .iter()
                        .map(|&x| x as f64)
                        .collect::<Vec<f64>>(),
                ))
                .map_err(rt)?
                .into(),
                (ElemType::I64, InputColumn::I64(v)) => {
                    Tensor::from_array((shape, v[range.clone()].to_vec()))
                        .map_err(rt)?
                        .into()
                }
                (ElemType::Str, InputColumn::Str(v)) => {
                    Tensor::from_string_array((shape, &v[range.clone()]))
                        .map_err(rt)?
                        .into()
                }
                (want, _) => {
                    return Err(bad(&format!(
                        "the model declares {}, got {}",
                        want.as_str(),
                        col.elem_type().as_str()
                    )))
                }
            };
            values.push((Cow::Borrowed(inp.name.as_str()), v));
        }
        let mut s = self.session()?;
        let outputs = s.run(values).map_err(rt)?;
        self.extract(&outputs, out)
    }
}
