//! Generates the ONNX protobuf types from the vendored `proto/onnx-ml.proto` with prost-build,
//! using the vendored `protoc` binary so no system protobuf compiler is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.compile_protos(&["proto/onnx-ml.proto"], &["proto/"])?;
    println!("cargo:rerun-if-changed=proto/onnx-ml.proto");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
