//! The model digest of summary.json: one SHA-256 over every file that
//! defines a model (config, weights, vocabulary and tokenizer files), so two
//! models that share a config but not their weights never collide.
//!
//! Each file is hashed by streaming (a 60 GB checkpoint is never held in
//! memory). The per-file hashes are cached beside the files in
//! [`CACHE_FILE`], keyed by each file's name, size, modification time (and
//! inode on Unix): a changed file is hashed again, an unchanged one is not.
//! A directory that cannot be written (a read-only model) is simply hashed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file beside a model's files that caches their hashes.
pub const CACHE_FILE: &str = ".headscan-digest";

/// Version of the cache file's layout.
const CACHE_VERSION: u32 = 1;

/// Files other than weights that define a model: configuration and
/// vocabulary / tokenizer files.
pub const DEFINING_FILES: [&str; 7] = [
    "config.json",
    "model.safetensors.index.json",
    "vocab.txt",
    "spiece.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Errors computing a model digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// A model file could not be read.
    #[error("{path}: cannot hash model file: {source}")]
    Read {
        /// The file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The directory holds no weights to hash.
    #[error("{0}: no model weights (*.safetensors or pytorch_model.bin) to digest")]
    NoWeights(String),
    /// The weight files could not be listed.
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
}

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

/// One cached file hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    #[serde(flatten)]
    stamp: Stamp,
    sha256: String,
}

/// The cache file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    files: Vec<Entry>,
}

/// The size, modification time and inode of a file.
fn stamp(path: &Path) -> Result<Stamp, DigestError> {
    let meta = std::fs::metadata(path).map_err(|source| DigestError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        size: meta.len(),
        mtime_ns,
        inode,
    })
}

/// Hex SHA-256 of a file, read in 1 MiB blocks.
pub fn file_sha256(path: &Path) -> Result<String, DigestError> {
    let read = |source| DigestError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The files of `dir` that define its model, sorted by name: config and
/// tokenizer files present, and the weights the loader would read
/// (safetensors first, else `pytorch_model.bin`).
pub fn model_files(dir: &Path) -> Result<Vec<PathBuf>, DigestError> {
    let mut files: Vec<PathBuf> = DEFINING_FILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    let weights = crate::weights::safetensors_files(dir)?;
    if !weights.is_empty() {
        files.extend(weights);
    } else if dir.join("pytorch_model.bin").is_file() {
        files.push(dir.join("pytorch_model.bin"));
    } else {
        return Err(DigestError::NoWeights(dir.display().to_string()));
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The name a file has in the digest: its path relative to the model directory.
fn name_in(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Reads the cache file of a directory; an absent or unreadable one is empty.
fn read_cache(dir: &Path) -> Cache {
    std::fs::read(dir.join(CACHE_FILE))
        .ok()
        .and_then(|text| serde_json::from_slice::<Cache>(&text).ok())
        .filter(|c| c.version == CACHE_VERSION)
        .unwrap_or_default()
}

/// Writes the cache file (atomically, best effort: a read-only directory
/// keeps no cache).
fn write_cache(dir: &Path, files: Vec<Entry>) {
    let cache = Cache {
        version: CACHE_VERSION,
        files,
    };
    let Ok(text) = serde_json::to_vec_pretty(&cache) else {
        return;
    };
    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, dir.join(CACHE_FILE)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(dir = %dir.display(), error = %e, "model digest not cached");
    }
}

/// Combines per-file hashes into the model digest, `sha256:<hex>`: the
/// SHA-256 of one `name<TAB>size<TAB>sha256` line per file, in name order.
fn combine(entries: &[Entry]) -> String {
    let mut hasher = Sha256::new();
    for e in entries {
        hasher.update(format!("{}\t{}\t{}\n", e.name, e.stamp.size, e.sha256).as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The digest of the model in `dir` (see the module docs), reusing cached
/// per-file hashes whose file is unchanged and caching new ones.
pub fn model_digest(dir: &Path) -> Result<String, DigestError> {
    let files = model_files(dir)?;
    let cached = read_cache(dir);
    let mut entries = Vec::with_capacity(files.len());
    let mut changed = false;
    for file in &files {
        let name = name_in(dir, file);
        let stamp = stamp(file)?;
        let hit = cached
            .files
            .iter()
            .find(|e| e.name == name && e.stamp == stamp)
            .map(|e| e.sha256.clone());
        let sha256 = match hit {
            Some(h) => h,
            None => {
                changed = true;
                tracing::info!(file = %file.display(), bytes = stamp.size, "hashing model file");
                file_sha256(file)?
            }
        };
        entries.push(Entry { name, stamp, sha256 });
    }
    if changed || cached.files.len() != entries.len() {
        write_cache(dir, entries.clone());
    }
    Ok(combine(&entries))
}

/// Records hashes already computed while writing files (as a download does)
/// in the cache of `dir`, so the first [`model_digest`] need not read them
/// again. `hashes` pairs file names relative to `dir` with hex SHA-256.
pub fn record_hashes(dir: &Path, hashes: &[(String, String)]) -> Result<(), DigestError> {
    let mut entries = Vec::with_capacity(hashes.len());
    for (name, sha256) in hashes {
        entries.push(Entry {
            name: name.clone(),
            stamp: stamp(&dir.join(name))?,
            sha256: sha256.clone(),
        });
    }
    write_cache(dir, entries);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(dir: &Path, weights: &[u8]) {
        std::fs::write(dir.join("config.json"), br#"{"model_type":"bert"}"#).unwrap();
        std::fs::write(dir.join("vocab.txt"), "[PAD]\n[UNK]\n").unwrap();
        std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    }

    #[test]
    fn same_config_different_weights_differ() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        model(a.path(), b"weights one");
        model(b.path(), b"weights two");
        model(c.path(), b"weights one");
        let (da, db, dc) = (
            model_digest(a.path()).unwrap(),
            model_digest(b.path()).unwrap(),
            model_digest(c.path()).unwrap(),
        );
        assert_ne!(da, db, "weights are part of the digest");
        assert_eq!(da, dc, "same files, same digest wherever they are");
        assert!(da.starts_with("sha256:") && da.len() == 7 + 64, "{da}");
        // The vocabulary is part of it too.
        std::fs::write(c.path().join("vocab.txt"), "[PAD]\n").unwrap();
        assert_ne!(model_digest(c.path()).unwrap(), da);
    }

    #[test]
    fn digest_is_cached_and_a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        model(dir.path(), b"weights one");
        let first = model_digest(dir.path()).unwrap();
        let cache = dir.path().join(CACHE_FILE);
        assert!(cache.is_file(), "the per-file hashes are cached");
        // A cached hash is trusted while the file's stamp is unchanged: plant
        // a wrong one and see it used (proof the file is not read again).
        let mut c = read_cache(dir.path());
        let w = c
            .files
            .iter_mut()
            .find(|e| e.name == "model.safetensors")
            .unwrap();
        w.sha256 = "0".repeat(64);
        std::fs::write(&cache, serde_json::to_vec(&c).unwrap()).unwrap();
        let planted = model_digest(dir.path()).unwrap();
        assert_ne!(planted, first, "the cached hash was used");
        // Rewriting the weights (same size, new content) changes the stamp.
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, b"weights two").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let changed = model_digest(dir.path()).unwrap();
        assert_ne!(changed, first);
        assert_ne!(changed, planted);
        // Back to the first content: the first digest again.
        std::fs::write(&path, b"weights one").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(model_digest(dir.path()).unwrap(), first);
    }

    #[test]
    fn weights_the_loader_ignores_are_not_hashed_and_none_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        assert!(matches!(model_digest(dir.path()), Err(DigestError::NoWeights(_))));
        std::fs::write(dir.path().join("pytorch_model.bin"), b"pickle").unwrap();
        let pth_only = model_digest(dir.path()).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"st").unwrap();
        let names: Vec<String> = model_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| name_in(dir.path(), p))
            .collect();
        assert_eq!(
            names,
            ["config.json", "model.safetensors"],
            "safetensors first, as loaded"
        );
        assert_ne!(model_digest(dir.path()).unwrap(), pth_only);
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_is_hashed_without_a_cache() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        model(dir.path(), b"weights one");
        let expected = {
            let other = tempfile::tempdir().unwrap();
            model(other.path(), b"weights one");
            model_digest(other.path()).unwrap()
        };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let got = model_digest(dir.path());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(got.unwrap(), expected);
    }
}
