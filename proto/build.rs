//! Compiles `proto/headscan.proto` with protox (pure Rust), so a fresh
//! machine needs nothing but cargo to build the gRPC contracts.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/headscan.proto");
    let descriptors = protox::compile(["proto/headscan.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
