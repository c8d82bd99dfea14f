//! The production [`ModelLoader`]: models loaded and scored by `cr-infer`.

use std::path::Path;
use std::sync::Arc;

use crate::scorer::{ModelLoader, RiskScorer};

/// Loads ONNX models with `cr-infer`.
#[derive(Debug, Clone, Default)]
pub struct InferLoader {}

impl ModelLoader for InferLoader {
    fn load(&self, path: &Path) -> Result<Arc<dyn RiskScorer>, String> {
        Err(format!("{}: cr-infer scoring is not available yet", path.display()))
    }
}
