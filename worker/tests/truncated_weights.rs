//! A truncated weight file is an error naming the file, never a crash:
//! safetensors files are memory-mapped, and reading a mapped page past the
//! end of a file would kill the process with SIGBUS. The safetensors header
//! is checked against the file's length before any tensor is read.

use std::path::Path;

use candle_core::Device;

/// A copy of the BERT fixture with `weights` cut to `keep` bytes (the other
/// weight format left out, so the cut one is what the loader reads).
fn cut_model(weights: &str, keep: usize) -> tempfile::TempDir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert");
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture.join(weights)).unwrap();
    assert!(keep < bytes.len());
    std::fs::write(dir.path().join(weights), &bytes[..keep]).unwrap();
    dir
}

/// Loads the model and returns the error chain as text.
fn load_error(dir: &Path) -> String {
    match headscan_worker::models::load_model(dir, &Device::Cpu) {
        Ok(_) => panic!("a truncated model loaded"),
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

#[test]
fn truncated_safetensors_is_an_error_naming_the_file() {
    let size = std::fs::metadata(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert/model.safetensors"),
    )
    .unwrap()
    .len() as usize;
    for keep in [size - 1, size / 2, 200, 9, 3, 0] {
        let dir = cut_model("model.safetensors", keep);
        let e = load_error(dir.path());
        assert!(e.contains("model.safetensors"), "cut to {keep}: {e}");
    }
}

#[test]
fn truncated_pytorch_bin_is_an_error_naming_the_file() {
    let size = std::fs::metadata(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert/pytorch_model.bin"),
    )
    .unwrap()
    .len() as usize;
    for keep in [size - 1, size / 2, 100, 0] {
        let dir = cut_model("pytorch_model.bin", keep);
        let e = load_error(dir.path());
        assert!(e.contains("pytorch_model.bin"), "cut to {keep}: {e}");
    }
}
