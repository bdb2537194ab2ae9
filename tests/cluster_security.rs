//! Security of the distributed system, with real processes on 127.0.0.1:
//! with a token configured, workers and clients without it are refused; a
//! job name or output cannot steer a write outside the store; TLS works with
//! a certificate.

mod cluster;

use std::path::Path;
use std::time::{Duration, Instant};

use cluster::*;

fn write_token(dir: &Path) -> String {
    let p = dir.join("token");
    std::fs::write(&p, "s3cret-token\n").unwrap();
    p.to_str().unwrap().to_string()
}

/// Waits for a process to exit (up to `timeout`); its status.
fn exit_within(p: &mut Proc, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(s)) = p.0.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn without_the_token_workers_and_clients_are_refused_and_names_cannot_escape_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 4);
    let token = write_token(tmp.path());
    let c = coordinator(tmp.path(), 0, &["--token-file", &token]);

    // A worker without the token stops, refused.
    let mut intruder = worker(tmp.path(), &c.url, 0, &[]);
    let status = exit_within(&mut intruder, Duration::from_secs(30)).expect("the refused worker exits");
    assert!(!status.success());
    // A client without the token (or with a wrong one) is refused.
    let o = submit(&c.url, &ds, &tmp.path().join("x"), &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    for args in [
        vec!["status", "--coordinator", &c.url],
        vec![
            "results",
            "list",
            "--coordinator",
            &c.url,
            "--token-file",
            wrong.to_str().unwrap(),
        ],
    ] {
        let o = headscan(&args);
        assert!(!o.status.success(), "{args:?}");
    }

    // With the token: a job named like a path writes only under its own keys.
    let _w = worker(tmp.path(), &c.url, 0, &["--token-file", &token]);
    let out = tmp.path().join("out");
    let o = submit(
        &c.url,
        &ds,
        &out,
        &["--token-file", &token, "--name", "../../etc", "--wait"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = job_id(&o);
    assert!(job.starts_with("j-") && !job.contains('/'), "{job}");
    for f in files(&c.store) {
        assert!(
            f.starts_with(&format!("jobs/{job}/partials/")),
            "unexpected object {f}"
        );
    }
    assert!(!tmp.path().join("etc").exists() && !c.store.join("etc").exists());
    assert!(out.join("heads.parquet").is_file());
    // An output that climbs out with '..' is refused.
    let sneaky = format!("{}/a/../../escape", tmp.path().display());
    let o = submit(&c.url, &ds, Path::new(&sneaky), &["--token-file", &token]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(".."),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn tls_with_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: openssl cannot make a test certificate");
        return;
    }
    let ds = demo_dataset(tmp.path(), 6);
    let c = coordinator(
        tmp.path(),
        0,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = c.url.replace("http://", "https://");
    let ca = cert.to_str().unwrap();
    let _w = worker(tmp.path(), &url, 0, &["--tls-ca", ca]);
    let out = tmp.path().join("out");
    let o = submit(&url, &ds, &out, &["--tls-ca", ca, "--wait"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("heads.parquet").is_file());
    // Plain-text clients get no service from a TLS coordinator.
    let o = headscan(&["status", "--coordinator", &c.url]);
    assert!(!o.status.success());
}
