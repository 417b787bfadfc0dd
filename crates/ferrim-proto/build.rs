//! Compiles the msync schema with protox (pure Rust), so no system `protoc` is needed.
fn main() {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let file = format!("{proto_dir}/msync.proto");
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([&file], [proto_dir]).expect("msync.proto compiles");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("prost code generation");
}
