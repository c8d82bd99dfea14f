//! cr-service integration tests: one binary, a module per area. Every test uses real
//! components: a SQLite file in a temp dir, real ONNX models (made with scikit-learn and
//! skl2onnx, reference scores from ONNX Runtime in Python), the real router, and real HTTP on
//! 127.0.0.1 in `e2e`.

mod api;
mod audit;
mod bounds;
mod chain;
mod conn;
mod deps;
mod durability;
mod e2e;
mod engines;
mod fuzz;
mod integrity;
mod load;
mod openapi;
mod percentile;
mod policy;
mod registry;
mod support;
