//! Model downloads over plain HTTP (a Hugging Face-style repository that
//! cannot be listed), from a tiny server on 127.0.0.1 started by each test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use headscan_proto::store::Location;
use headscan_worker::fetch::{COMPLETE_MARKER, FetchError, cache_dir, download};

/// How the server answers one path.
#[derive(Clone)]
enum Answer {
    /// 200 with this body.
    File(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// 200 announcing `declared` bytes, then only `body`, then the connection closes.
    Truncated { declared: usize, body: Vec<u8> },
}

/// A one-thread HTTP/1.1 server; returns its base URL and the log of
/// `METHOD path` lines it served.
fn serve(routes: HashMap<String, Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let served = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let mut parts = request.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            served.lock().unwrap().push(format!("{method} {path}"));
            let answer = match method.as_str() {
                "GET" => routes.get(&path).cloned().unwrap_or(Answer::Status(404)),
                _ => Answer::Status(405),
            };
            let (status, declared, body) = match answer {
                Answer::File(b) => (200, b.len(), b),
                Answer::Status(s) => (s, 0, Vec::new()),
                Answer::Truncated { declared, body } => (200, declared, body),
            };
            let head =
                format!("HTTP/1.1 {status} X\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            let _ = stream.flush();
        }
    });
    (base, log)
}

/// The files of a fixture model, as `/repo/<name>` routes.
fn fixture_routes(names: &[&str]) -> HashMap<String, Answer> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/bert");
    names
        .iter()
        .map(|n| {
            (
                format!("/repo/{n}"),
                Answer::File(std::fs::read(fixture.join(n)).unwrap()),
            )
        })
        .collect()
}

/// Nothing usable is left in the cache: no entry, no temporary directory.
fn assert_no_cache(cache: &Path, location: &Location) {
    assert!(!cache_dir(location, cache).exists(), "no cache entry");
    let left: Vec<_> = std::fs::read_dir(cache.join("models"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary downloads removed: {left:?}");
}

#[tokio::test]
async fn repository_with_both_formats_fetches_only_safetensors() {
    let (base, log) = serve(fixture_routes(&[
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
        "model.safetensors",
        "pytorch_model.bin",
    ]));
    let location = Location::parse(&format!("{base}/repo")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = download(&location, cache.path()).await.unwrap();
    for f in [
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
        "model.safetensors",
        COMPLETE_MARKER,
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(!dir.join("pytorch_model.bin").exists());
    let requests = log.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|r| r.contains("pytorch_model.bin")),
        "the .bin is never downloaded: {requests:?}"
    );
    // The cached copy loads.
    let model = headscan_worker::models::load_model(&dir, &candle_core::Device::Cpu).unwrap();
    assert!(model.model.n_layers() > 0);
    // Second call: served from the cache, no request.
    let before = log.lock().unwrap().len();
    assert_eq!(download(&location, cache.path()).await.unwrap(), dir);
    assert_eq!(log.lock().unwrap().len(), before);
}

#[tokio::test]
async fn a_failed_weight_download_is_an_error_and_caches_nothing() {
    let cache = tempfile::tempdir().unwrap();
    for (what, answer) in [
        ("refused", Answer::Status(403)),
        (
            "cut off",
            Answer::Truncated {
                declared: 100_000,
                body: vec![7; 1000],
            },
        ),
    ] {
        let mut routes = fixture_routes(&["config.json", "vocab.txt"]);
        routes.insert("/repo/model.safetensors".into(), answer);
        let (base, _) = serve(routes);
        let location = Location::parse(&format!("{base}/repo")).unwrap();
        let err = download(&location, cache.path()).await.unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{what}: {err}");
        assert_no_cache(cache.path(), &location);
    }
}

#[tokio::test]
async fn a_repository_without_weights_is_an_error() {
    let (base, _) = serve(fixture_routes(&["config.json", "vocab.txt"]));
    let location = Location::parse(&format!("{base}/repo")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = download(&location, cache.path()).await.unwrap_err();
    assert!(matches!(err, FetchError::NoWeights(_)), "{err}");
    assert_no_cache(cache.path(), &location);
}

#[tokio::test]
async fn a_half_filled_cache_entry_is_not_used() {
    let (base, _) = serve(fixture_routes(&["config.json", "vocab.txt", "model.safetensors"]));
    let location = Location::parse(&format!("{base}/repo")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    // What a failed download of an older headscan left: config.json, no weights.
    let dir = cache_dir(&location, cache.path());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    let got = download(&location, cache.path()).await.unwrap();
    assert_eq!(got, dir);
    assert!(dir.join("model.safetensors").is_file());
    assert!(dir.join(COMPLETE_MARKER).is_file());
    headscan_worker::models::load_model(&dir, &candle_core::Device::Cpu).unwrap();
}
