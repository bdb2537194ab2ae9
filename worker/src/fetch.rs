//! Models on object stores: a model URL (`s3://…`, `gs://…`, `http(s)://…`,
//! `file://…`) is copied once into a local cache directory, then loaded like
//! a local directory.
//!
//! The cache is never half-filled:
//! - files are streamed to disk chunk by chunk (a 15B ESM-2 is 60 GB), each
//!   checked against the size the store reports and hashed on the way;
//! - one weight format is fetched: safetensors (one file, or the shards of
//!   `model.safetensors.index.json`) when the repository has it, else
//!   `pytorch_model.bin`;
//! - the download goes to a temporary directory beside the cache entry,
//!   which is checked (config.json parses, weights present and complete),
//!   given its completion marker [`COMPLETE_MARKER`] and renamed into place
//!   at once. An entry without the marker is fetched again; temporary
//!   directories left by a crashed process are never used, and removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use headscan_proto::store::{Location, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file that marks a cache entry as complete and lists its files.
pub const COMPLETE_MARKER: &str = ".headscan-complete";

/// Configuration and tokenizer files fetched when the repository has them.
const EXTRA_FILES: [&str; 5] = [
    "vocab.txt",
    "spiece.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The index of sharded safetensors weights.
const INDEX: &str = "model.safetensors.index.json";

/// Errors fetching a model into the cache.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The object store failed (including a download that broke off).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The local cache could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Local path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file arrived with another size than the store reported.
    #[error("{url}: incomplete download: {got} bytes of {expected}")]
    Incomplete {
        /// Object URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Size the store reported.
        expected: u64,
    },
    /// The repository has no weights headscan can read.
    #[error(
        "{0}: no model weights (model.safetensors, model.safetensors.index.json, *.safetensors or pytorch_model.bin)"
    )]
    NoWeights(String),
    /// A fetched file is not what a model directory needs.
    #[error("{url}: {reason}")]
    Invalid {
        /// Object URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// One file of a complete cache entry, as its marker lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedFile {
    name: String,
    size: u64,
    sha256: String,
}

/// The completion marker's contents.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    url: String,
    files: Vec<CachedFile>,
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
pub async fn resolve_model(model: &str) -> Result<PathBuf, FetchError> {
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

/// The cache entry of a model URL: `cache/models/<first 16 hex of SHA-256(URL)>`.
pub fn cache_dir(location: &Location, cache: &Path) -> PathBuf {
    let digest = hex::encode(&Sha256::digest(location.url().as_bytes())[..8]);
    cache.join("models").join(digest)
}

/// True when `dir` is a complete cache entry: its marker is readable and
/// every file it lists is present with its size.
fn is_complete(dir: &Path) -> bool {
    let Some(marker) = std::fs::read(dir.join(COMPLETE_MARKER))
        .ok()
        .and_then(|t| serde_json::from_slice::<Marker>(&t).ok())
    else {
        return false;
    };
    !marker.files.is_empty()
        && marker
            .files
            .iter()
            .all(|f| std::fs::metadata(dir.join(&f.name)).is_ok_and(|m| m.is_file() && m.len() == f.size))
}

/// Removes the temporary directories of a cache entry left by processes that
/// no longer run (where that can be told: Linux's `/proc`; elsewhere they are
/// left alone, and never used).
fn clean_leftovers(dir: &Path) {
    let (Some(parent), Some(stem)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let prefix = format!("{}.partial", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        // `<entry>.partial` (older headscan) or `<entry>.partial-<pid>-<nanos>`.
        let pid = rest
            .strip_prefix('-')
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let dead = match pid {
            None => rest.is_empty(),
            Some(pid) => proc_fs && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        };
        if dead {
            tracing::info!(path = %entry.path().display(), "removing a model download left by a stopped process");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A temporary download directory, removed on drop unless kept.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Maps an I/O error on a local path.
fn io(path: &Path) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a stream of chunks to `path`, hashing on the way, and checks the
/// total against `expected` bytes. Returns the hex SHA-256.
async fn write_stream<S>(url: &str, path: &Path, expected: u64, mut stream: S) -> Result<String, FetchError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, StoreError>> + Unpin,
{
    let mut file = std::fs::File::create(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).map_err(io(path))?;
        hasher.update(&chunk);
        got += chunk.len() as u64;
        if got > expected {
            break;
        }
    }
    if got != expected {
        return Err(FetchError::Incomplete {
            url: url.to_string(),
            got,
            expected,
        });
    }
    file.sync_all().map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Streams one object into `staging/<name>`. `Ok(None)` when the store says it
/// does not exist; any other failure is an error.
async fn fetch_file(
    location: &Location,
    name: &str,
    staging: &Path,
) -> Result<Option<CachedFile>, FetchError> {
    let (size, stream) = match location.get_stream(name).await {
        Ok(got) => got,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(url = %location.child_url(name), bytes = size, "downloading");
    let sha256 = write_stream(&location.child_url(name), &staging.join(name), size, stream).await?;
    Ok(Some(CachedFile {
        name: name.to_string(),
        size,
        sha256,
    }))
}

/// A file name that stays inside the cache entry.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\'])
}

/// Shard file names listed in a `model.safetensors.index.json`.
fn shard_names(url: &str, index: &[u8]) -> Result<Vec<String>, FetchError> {
    let invalid = |reason: String| FetchError::Invalid {
        url: url.to_string(),
        reason,
    };
    let json: serde_json::Value = serde_json::from_slice(index).map_err(|e| invalid(e.to_string()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| invalid("no `weight_map` object".into()))?;
    let mut names = Vec::new();
    for v in map.values() {
        let name = v
            .as_str()
            .ok_or_else(|| invalid(format!("weight_map value {v} is not a file name")))?;
        if !plain_name(name) {
            return Err(invalid(format!("shard `{name}` is not a plain file name")));
        }
        names.push(name.to_string());
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(invalid("`weight_map` lists no shards".into()));
    }
    Ok(names)
}

/// Which weight files to fetch, in order of preference, given the top-level
/// names a store listed (`None`: the store cannot list).
enum WeightPlan {
    /// Sharded safetensors: the index, then its shards.
    Sharded,
    /// These files, all required.
    Files(Vec<String>),
    /// Probe `model.safetensors.index.json`, `model.safetensors`, then `pytorch_model.bin`.
    Probe,
}

fn weight_plan(listed: Option<&[String]>, url: &str) -> Result<WeightPlan, FetchError> {
    let Some(names) = listed else {
        return Ok(WeightPlan::Probe);
    };
    let has = |n: &str| names.iter().any(|x| x == n);
    if has(INDEX) {
        return Ok(WeightPlan::Sharded);
    }
    if has("model.safetensors") {
        return Ok(WeightPlan::Files(vec!["model.safetensors".into()]));
    }
    let other: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors") && plain_name(n))
        .cloned()
        .collect();
    if !other.is_empty() {
        return Ok(WeightPlan::Files(other));
    }
    if has("pytorch_model.bin") {
        return Ok(WeightPlan::Files(vec!["pytorch_model.bin".into()]));
    }
    Err(FetchError::NoWeights(url.to_string()))
}

/// Copies a model's files from a store location into its cache entry
/// ([`cache_dir`]), once: a complete entry is reused, anything else fetched
/// again. See the module docs for what "complete" means.
pub async fn download(location: &Location, cache: &Path) -> Result<PathBuf, FetchError> {
    let dir = cache_dir(location, cache);
    if is_complete(&dir) {
        return Ok(dir);
    }
    let parent = dir.parent().unwrap_or(cache).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    clean_leftovers(&dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut staging = Staging {
        path: dir.with_extension(format!("partial-{}-{nanos}", std::process::id())),
        keep: false,
    };
    std::fs::create_dir_all(&staging.path).map_err(io(&staging.path))?;
    let files = fetch_into(location, &staging.path).await?;

    // Hashes computed while downloading seed the model digest's cache.
    let hashes: Vec<(String, String)> = files.iter().map(|f| (f.name.clone(), f.sha256.clone())).collect();
    if let Err(e) = crate::digest::record_hashes(&staging.path, &hashes) {
        tracing::debug!(error = %e, "model digest not cached");
    }
    let marker = Marker {
        url: location.url().to_string(),
        files,
    };
    let marker_path = staging.path.join(COMPLETE_MARKER);
    let text = serde_json::to_vec_pretty(&marker).map_err(|e| FetchError::Invalid {
        url: location.url().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(&marker_path, text).map_err(io(&marker_path))?;

    // An incomplete entry (no marker: an older headscan's or a hand-made
    // copy) is replaced; a complete one another process just published wins.
    if dir.exists() && !is_complete(&dir) {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    match std::fs::rename(&staging.path, &dir) {
        Ok(()) => staging.keep = true,
        Err(_) if is_complete(&dir) => {}
        Err(e) => return Err(io(&dir)(e)),
    }
    tracing::info!(url = %location.url(), dir = %dir.display(), "model cached");
    Ok(dir)
}

/// Fetches config, tokenizer files and one weight format into `staging`,
/// checks them, and returns what was written.
async fn fetch_into(location: &Location, staging: &Path) -> Result<Vec<CachedFile>, FetchError> {
    let url = location.url().to_string();
    // Stores that cannot list (plain HTTP) are asked for the usual names.
    let listed: Option<Vec<String>> = match location.list("").await {
        Ok(names) if !names.is_empty() => Some(names.into_iter().filter(|n| !n.contains('/')).collect()),
        _ => None,
    };
    let listed_has = |n: &str| listed.as_ref().is_none_or(|l| l.iter().any(|x| x == n));
    let mut files = Vec::new();

    let config = fetch_file(location, "config.json", staging)
        .await?
        .ok_or_else(|| FetchError::Invalid {
            url: location.child_url("config.json"),
            reason: "the model has no config.json".into(),
        })?;
    let config_path = staging.join("config.json");
    let text = std::fs::read(&config_path).map_err(io(&config_path))?;
    match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(v) if v.is_object() => {}
        Ok(_) => {
            return Err(FetchError::Invalid {
                url: location.child_url("config.json"),
                reason: "not a JSON object".into(),
            });
        }
        Err(e) => {
            return Err(FetchError::Invalid {
                url: location.child_url("config.json"),
                reason: format!("not valid JSON: {e}"),
            });
        }
    }
    files.push(config);

    for name in EXTRA_FILES {
        if listed_has(name)
            && let Some(f) = fetch_file(location, name, staging).await?
        {
            files.push(f);
        }
    }

    let required = |name: &str, got: Option<CachedFile>| {
        got.ok_or_else(|| FetchError::Invalid {
            url: location.child_url(name),
            reason: "listed by the store but not found".into(),
        })
    };
    let mut weights = Vec::new();
    let mut sharded = false;
    match weight_plan(listed.as_deref(), &url)? {
        WeightPlan::Sharded => {
            files.push(required(INDEX, fetch_file(location, INDEX, staging).await?)?);
            sharded = true;
        }
        WeightPlan::Files(names) => {
            for name in names {
                weights.push(required(&name, fetch_file(location, &name, staging).await?)?);
            }
        }
        WeightPlan::Probe => {
            if let Some(index) = fetch_file(location, INDEX, staging).await? {
                files.push(index);
                sharded = true;
            } else if let Some(single) = fetch_file(location, "model.safetensors", staging).await? {
                weights.push(single);
            } else if let Some(pth) = fetch_file(location, "pytorch_model.bin", staging).await? {
                weights.push(pth);
            }
        }
    }
    if sharded {
        let index_path = staging.join(INDEX);
        let index = std::fs::read(&index_path).map_err(io(&index_path))?;
        for name in shard_names(&location.child_url(INDEX), &index)? {
            weights.push(required(&name, fetch_file(location, &name, staging).await?)?);
        }
    }
    if weights.is_empty() {
        return Err(FetchError::NoWeights(url));
    }
    files.extend(weights);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a future to completion on the current thread.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn file_url(dir: &Path) -> Location {
        Location::parse(&format!(
            "file://{}",
            std::fs::canonicalize(dir).unwrap().display()
        ))
        .unwrap()
    }

    #[test]
    fn download_copies_model_files_once_and_one_weight_format() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/t5");
        let location = file_url(&fixture);
        let cache = tempfile::tempdir().unwrap();
        let dir = block_on(download(&location, cache.path())).unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "spiece.model",
            COMPLETE_MARKER,
        ] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        assert!(
            !dir.join("pytorch_model.bin").exists(),
            "safetensors is preferred; one format only"
        );
        assert!(!dir.join("cases.json").exists(), "only model files are copied");
        assert!(
            !dir.join("attentions.safetensors").exists(),
            "only the model's weights"
        );
        let same = std::fs::read(fixture.join("model.safetensors")).unwrap();
        assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), same);
        let again = block_on(download(&location, cache.path())).unwrap();
        assert_eq!(again, dir);
        // The download seeded the digest cache: the digest equals the source's.
        assert!(dir.join(crate::digest::CACHE_FILE).is_file());
        let scratch = tempfile::tempdir().unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "spiece.model",
            "special_tokens_map.json",
            "tokenizer_config.json",
        ] {
            std::fs::copy(fixture.join(f), scratch.path().join(f)).unwrap();
        }
        assert_eq!(
            crate::digest::model_digest(&dir).unwrap(),
            crate::digest::model_digest(scratch.path()).unwrap()
        );
    }

    #[test]
    fn pytorch_only_repository_fetches_the_bin() {
        let src = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert");
        for f in ["config.json", "vocab.txt", "pytorch_model.bin"] {
            std::fs::copy(fixture.join(f), src.path().join(f)).unwrap();
        }
        let cache = tempfile::tempdir().unwrap();
        let dir = block_on(download(&file_url(src.path()), cache.path())).unwrap();
        assert!(dir.join("pytorch_model.bin").is_file());
        assert!(dir.join("vocab.txt").is_file());
    }

    #[test]
    fn sharded_safetensors_fetch_index_and_shards_only() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("config.json"), b"{}").unwrap();
        std::fs::write(
            src.path().join(INDEX),
            br#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        for n in [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ] {
            std::fs::write(src.path().join(n), n.as_bytes()).unwrap();
        }
        std::fs::write(src.path().join("pytorch_model.bin"), b"bin").unwrap();
        std::fs::write(src.path().join("attentions.safetensors"), b"not weights").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let dir = block_on(download(&file_url(src.path()), cache.path())).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                INDEX
            ]
        );
    }

    #[test]
    fn a_missing_shard_is_an_error_and_leaves_no_cache() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("config.json"), b"{}").unwrap();
        std::fs::write(
            src.path().join(INDEX),
            br#"{"weight_map":{"a":"model-1.safetensors"}}"#,
        )
        .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let location = file_url(src.path());
        let err = block_on(download(&location, cache.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("model-1.safetensors"), "{err}");
        let models = cache.path().join("models");
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0, "staging removed");
        // No weights at all, and an index escaping the cache entry: errors too.
        std::fs::write(
            src.path().join(INDEX),
            br#"{"weight_map":{"a":"../x.safetensors"}}"#,
        )
        .unwrap();
        let err = block_on(download(&location, cache.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a plain file name"), "{err}");
        std::fs::remove_file(src.path().join(INDEX)).unwrap();
        let err = block_on(download(&location, cache.path())).unwrap_err();
        assert!(matches!(err, FetchError::NoWeights(_)), "{err}");
        // A config.json that is not JSON is refused.
        std::fs::write(src.path().join("model.safetensors"), b"w").unwrap();
        std::fs::write(src.path().join("config.json"), b"{ not json").unwrap();
        let err = block_on(download(&location, cache.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("not valid JSON"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
    }

    #[test]
    fn a_half_filled_entry_without_marker_is_fetched_again() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert");
        let location = file_url(&fixture);
        let cache = tempfile::tempdir().unwrap();
        let dir = cache_dir(&location, cache.path());
        // What the old fetch left after a failed weight download.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture.join("config.json"), dir.join("config.json")).unwrap();
        std::fs::write(dir.join("model.safetensors"), b"half").unwrap();
        // Leftovers of crashed downloads: old-style and a dead process's.
        let old = dir.with_extension("partial");
        let dead = dir.with_extension("partial-4000000000-1");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&dead).unwrap();
        let got = block_on(download(&location, cache.path())).unwrap();
        assert_eq!(got, dir);
        assert!(is_complete(&dir));
        assert_eq!(
            std::fs::read(dir.join("model.safetensors")).unwrap(),
            std::fs::read(fixture.join("model.safetensors")).unwrap()
        );
        assert!(!old.exists());
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists());
        }
        // A complete entry whose weight file was cut is not complete any more.
        std::fs::write(dir.join("model.safetensors"), b"cut").unwrap();
        assert!(!is_complete(&dir));
        block_on(download(&location, cache.path())).unwrap();
        assert!(is_complete(&dir));
    }

    #[test]
    fn a_stream_shorter_or_longer_than_reported_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let chunks = |parts: &[&'static [u8]]| {
            futures::stream::iter(
                parts
                    .iter()
                    .map(|p| Ok(bytes::Bytes::from_static(p)))
                    .collect::<Vec<Result<_, StoreError>>>(),
            )
        };
        let ok = block_on(write_stream("u", &path, 6, chunks(&[b"abc", b"def"]))).unwrap();
        assert_eq!(ok, hex::encode(Sha256::digest(b"abcdef")));
        let short = block_on(write_stream("u", &path, 10, chunks(&[b"abc", b"def"]))).unwrap_err();
        assert!(
            short.to_string().contains("incomplete download: 6 bytes of 10"),
            "{short}"
        );
        let long = block_on(write_stream("u", &path, 2, chunks(&[b"abc"]))).unwrap_err();
        assert!(matches!(
            long,
            FetchError::Incomplete {
                got: 3,
                expected: 2,
                ..
            }
        ));
    }
}
