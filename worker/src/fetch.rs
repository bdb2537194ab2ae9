//! Models on object stores: a model URL (`s3://…`, `gs://…`, `http(s)://…`,
//! `file://…`) is copied once into a local cache directory, then loaded like
//! a local directory.

use std::path::{Path, PathBuf};

use headscan_proto::store::{Location, StoreError};
use sha2::{Digest, Sha256};

/// Files of a Hugging Face-layout model directory that headscan reads.
fn wanted(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base == "config.json"
        || base == "vocab.txt"
        || base == "spiece.model"
        || base == "pytorch_model.bin"
        || base.ends_with(".safetensors")
        || base == "model.safetensors.index.json"
        || base == "tokenizer_config.json"
        || base == "special_tokens_map.json"
}

/// Files asked for by name where a store cannot list a directory.
const KNOWN_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "vocab.txt",
    "spiece.model",
];

/// Shard file names listed in a `model.safetensors.index.json`.
fn shard_names(index: &[u8]) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(index).unwrap_or_default();
    let mut names: Vec<String> = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

/// The cache root: `$HEADSCAN_CACHE`, else `$XDG_CACHE_HOME/headscan`, else `~/.cache/headscan`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEADSCAN_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("headscan");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/headscan")
}

/// Resolves a model argument to a local directory: a directory as is, a URL
/// downloaded (once) into the cache.
pub async fn resolve_model(model: &str) -> Result<PathBuf, StoreError> {
    if Path::new(model).is_dir() {
        return Ok(PathBuf::from(model));
    }
    let location = Location::parse(model)?;
    if let Some(dir) = location.local_dir()
        && dir.is_dir()
    {
        return Ok(dir.to_path_buf());
    }
    download(&location, &cache_root()).await
}

/// Copies a model's files from a store location into `cache/models/<hash of URL>/`
/// (once: an existing complete copy is reused).
pub async fn download(location: &Location, cache: &Path) -> Result<PathBuf, StoreError> {
    let digest = hex::encode(&Sha256::digest(location.url().as_bytes())[..8]);
    let dir = cache.join("models").join(digest);
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    let staging = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    let io = |e: std::io::Error| StoreError::Invalid {
        url: staging.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&staging).map_err(io)?;
    // Stores that cannot list (plain HTTP) are asked for the usual names.
    let names = match location.list("").await {
        Ok(names) if !names.is_empty() => names,
        _ => KNOWN_FILES.iter().map(|s| s.to_string()).collect(),
    };
    let mut index_shards = Vec::new();
    for name in &names {
        if !wanted(name) || name.contains('/') {
            continue;
        }
        match location.get(name).await {
            Ok(bytes) => {
                if name == "model.safetensors.index.json" {
                    index_shards = shard_names(&bytes);
                }
                std::fs::write(staging.join(name), &bytes).map_err(io)?;
            }
            Err(e) if name == "config.json" => return Err(e),
            Err(_) => {}
        }
    }
    for name in index_shards {
        if !staging.join(&name).is_file() {
            let bytes = location.get(&name).await?;
            std::fs::write(staging.join(&name), &bytes).map_err(io)?;
        }
    }
    std::fs::rename(&staging, &dir).map_err(io)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_copies_model_files_once() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/t5");
        let url = format!("file://{}", std::fs::canonicalize(&fixture).unwrap().display());
        let location = Location::parse(&url).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let rt = tokio_free_block_on(download(&location, cache.path())).unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "spiece.model",
        ] {
            assert!(rt.join(f).is_file(), "{f}");
        }
        assert!(!rt.join("cases.json").exists(), "only model files are copied");
        let again = tokio_free_block_on(download(&location, cache.path())).unwrap();
        assert_eq!(again, rt);
    }

    /// Runs a future to completion on the current thread.
    fn tokio_free_block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }
}
