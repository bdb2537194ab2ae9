//! Failures of the distributed system, with real processes on 127.0.0.1:
//! a worker or the coordinator killed (SIGKILL) mid-job, late, duplicate and
//! foreign completions, and a shard the worker rejects. None may change the
//! result; a bad shard fails the job naming it (or, with allow_partial, is
//! left out and named).

mod cluster;

use std::time::Duration;

use cluster::*;
use headscan_proto::client::{BearerToken, channel};
use headscan_proto::pb::work_client::WorkClient;
use headscan_proto::pb::{CompleteTaskRequest, LeaseTaskRequest, PartialCounts, RegisterWorkerRequest};

const WAIT: Duration = Duration::from_secs(120);

fn final_state(url: &str, job: &str) -> String {
    wait_for(url, job, WAIT, &[], |s| {
        s.contains(" succeeded ") || s.contains(" failed ") || s.contains(" cancelled ")
    })
}

#[test]
fn sigkill_of_a_worker_mid_task_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let reference = embedded_run(tmp.path(), &ds, "run-out");
    let c = coordinator(tmp.path(), 0, &[]);
    let mut slow = worker(tmp.path(), &c.url, 5_000, &[]);
    let out = tmp.path().join("out");
    let o = submit(&c.url, &ds, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = job_id(&o);
    wait_for(&c.url, &job, WAIT, &[], |s| !s.contains("(leased 0,"));
    slow.kill();
    let _fast = worker(tmp.path(), &c.url, 0, &[]);
    let s = final_state(&c.url, &job);
    assert!(s.contains(" succeeded "), "{s}");
    assert!(
        !s.contains("failures 0 "),
        "the killed worker's lease expired: {s}"
    );
    assert_same_tables(&reference, &out);
}

#[test]
fn sigkill_of_the_coordinator_mid_job_resumes_on_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let reference = embedded_run(tmp.path(), &ds, "run-out");
    let port = free_port();
    let mut c = coordinator(tmp.path(), port, &[]);
    let url = c.url.clone();
    let _w = worker(tmp.path(), &url, 600, &[]);
    let out = tmp.path().join("out");
    let o = submit(&url, &ds, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = job_id(&o);
    wait_for(&url, &job, WAIT, &[], |s| shards_done(s) >= 2);
    c.proc.kill();
    std::thread::sleep(Duration::from_millis(700));
    let c2 = coordinator(tmp.path(), port, &[]);
    assert_eq!(c2.url, url);
    let s = final_state(&url, &job);
    assert!(s.contains(" succeeded "), "{s}");
    assert_same_tables(&reference, &out);
}

#[test]
fn late_duplicate_and_foreign_completions_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let reference = embedded_run(tmp.path(), &ds, "run-out");
    let c = coordinator(tmp.path(), 0, &[]);
    let out = tmp.path().join("out");
    let o = submit(&c.url, &ds, &out, &[]);
    let job = job_id(&o);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _entered = rt.enter();
    let url = c.url.clone();
    let garbage = || PartialCounts {
        n_layers: 1,
        n_heads: 1,
        sequences: 999,
        ..Default::default()
    };
    let complete = |worker: &str, task: &str| CompleteTaskRequest {
        worker_id: worker.into(),
        task_id: task.into(),
        partial: Some(garbage()),
        ..Default::default()
    };
    let mut client =
        WorkClient::with_interceptor(channel(&url, None).unwrap(), BearerToken::new(None).unwrap());
    // A ghost worker leases shard 0, then goes silent.
    let ghost_task = rt.block_on(async {
        client
            .register(RegisterWorkerRequest {
                worker_id: "ghost".into(),
                protocol_version: headscan_proto::PROTOCOL_VERSION,
                ..Default::default()
            })
            .await
            .unwrap();
        let t = client
            .lease(LeaseTaskRequest {
                worker_id: "ghost".into(),
                device: "cpu".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .task
            .unwrap();
        assert_eq!((t.shard_index, t.attempt), (0, 1));
        // Foreign: another worker completes the ghost's task.
        let r = client.complete(complete("intruder", &t.task_id)).await.unwrap();
        assert!(!r.into_inner().accepted, "a foreign completion is ignored");
        // A task id naming an attempt that was never leased.
        let r = client
            .complete(complete("ghost", &format!("{job}.0.7")))
            .await
            .unwrap();
        assert!(!r.into_inner().accepted);
        // Ids that are not ours are refused outright.
        let e = client
            .complete(complete("ghost", "../../etc.0.1"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        t.task_id
    });
    // The ghost's lease expires; a real worker does the whole job.
    std::thread::sleep(Duration::from_millis(2_000));
    let _w = worker(tmp.path(), &c.url, 0, &["--id", "w1"]);
    let s = final_state(&c.url, &job);
    assert!(s.contains(" succeeded "), "{s}");
    let partial = c.store.join(format!("jobs/{job}/partials/000001.pb"));
    let before = std::fs::read(&partial).unwrap();
    rt.block_on(async {
        // Late: the ghost wakes up and completes its expired lease.
        let r = client.complete(complete("ghost", &ghost_task)).await.unwrap();
        assert!(!r.into_inner().accepted, "a late completion is ignored");
        // Duplicate: the real worker's completion of shard 1 sent again.
        for attempt in 1..=2 {
            let r = client
                .complete(complete("w1", &format!("{job}.1.{attempt}")))
                .await
                .unwrap();
            assert!(!r.into_inner().accepted, "a duplicate completion is ignored");
        }
    });
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        before,
        "the committed partial is untouched"
    );
    assert_same_tables(&reference, &out);
    let s = status(&c.url, &job, &[]);
    assert!(s.contains("shards 6/6") && s.contains("sequences 12/12"), "{s}");
}

#[test]
fn a_corrupt_shard_fails_the_job_naming_it_or_is_left_out_with_allow_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("manifest.json")).unwrap()).unwrap();
    let bad = manifest["shards"][1]["url"].as_str().unwrap().to_string();
    std::fs::write(ds.join(&bad), b"this is not a parquet file").unwrap();
    let c = coordinator(tmp.path(), 0, &[]);
    let _w = worker(tmp.path(), &c.url, 0, &[]);

    let o = submit(&c.url, &ds, &tmp.path().join("strict"), &["--wait"]);
    assert!(!o.status.success(), "a corrupt shard fails the job");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("shard 1 ({bad})")), "{err}");
    assert!(
        err.to_lowercase().contains("parquet"),
        "the reason is given: {err}"
    );
    assert!(!tmp.path().join("strict/heads.parquet").exists());

    let out = tmp.path().join("partial");
    let o = submit(&c.url, &ds, &out, &["--wait", "--allow-partial"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let missing = summary["missing_shards"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{summary}");
    assert!(missing[0].as_str().unwrap().contains(&bad), "{summary}");
    assert_eq!(summary["sequences"], 10, "the counts exclude the missing shard");
    assert_eq!(summary["complete"], false);
}

#[test]
fn cancel_stops_the_workers_task_within_a_heartbeat_and_watch_and_metrics_show_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let c = coordinator(tmp.path(), 0, &["--metrics", &metrics]);
    let mut slow = worker(tmp.path(), &c.url, 30_000, &[]);
    let o = submit(&c.url, &ds, &tmp.path().join("cancelled"), &[]);
    let job = job_id(&o);
    wait_for(&c.url, &job, WAIT, &[], |s| !s.contains("(leased 0,"));
    let o = headscan(&["cancel", &job, "--coordinator", &c.url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(" cancelled "));
    // The worker hears it at its next heartbeat (250 ms) and drops the task.
    let start = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(tmp.path().join("worker-0.log")).unwrap_or_default();
        if log.contains("task abandoned") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the worker kept the cancelled task: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    slow.kill();
    // A second job: `status --watch` follows it live to the end.
    let worker_metrics = format!("127.0.0.1:{}", free_port());
    let _fast = worker(tmp.path(), &c.url, 0, &["--metrics", &worker_metrics]);
    let o = submit(&c.url, &ds, &tmp.path().join("watched"), &[]);
    let job = job_id(&o);
    let o = headscan(&["status", &job, "--watch", "--coordinator", &c.url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let watched = String::from_utf8_lossy(&o.stdout);
    assert!(
        watched.contains("succeeded") && watched.contains("shards 6/6"),
        "{watched}"
    );
    assert!(
        watched.contains("seq/s") && watched.contains("ETA") && watched.contains("failures"),
        "{watched}"
    );

    // Prometheus text on --metrics.
    let get = |addr: &str| {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        sock.read_to_string(&mut page).unwrap();
        page
    };
    // The worker loaded the model once for its six tasks.
    let page = get(&worker_metrics);
    assert!(page.contains("headscan_worker_tasks_done_total 6"), "{page}");
    assert!(page.contains("headscan_worker_model_loads_total 1"), "{page}");
    let page = get(&metrics);
    for m in [
        "headscan_tasks_queued",
        "headscan_tasks_leased",
        "headscan_tasks_done",
        "headscan_tasks_failed",
        "headscan_workers_live",
        "headscan_sequences_per_second",
        "headscan_residues_per_second",
    ] {
        assert!(page.contains(m), "{m} missing from {page}");
    }
    assert!(page.contains("headscan_sequences_committed_total 12"), "{page}");
}

#[test]
fn headscan_run_stops_promptly_on_a_failed_shard_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("manifest.json")).unwrap()).unwrap();
    let bad = manifest["shards"][0]["url"].as_str().unwrap().to_string();
    std::fs::write(ds.join(&bad), b"PAR1 but not really").unwrap();
    let out = tmp.path().join("out");
    let mut args = vec!["run".to_string()];
    args.extend(demo_flags(&ds, &out));
    args.extend(["--workers".to_string(), "2".to_string()]);
    // Each of the 12 tasks waits 2 s: finishing them all would take ≥ 12 s;
    // the failing shard is the first one leased.
    let start = std::time::Instant::now();
    let o = std::process::Command::new(bin())
        .args(&args)
        .env("RUST_LOG", "warn")
        .env("HEADSCAN_TEST_TASK_DELAY_MS", "2000")
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("shard 0 ({bad})")), "{err}");
    assert!(
        elapsed < Duration::from_millis(8_000),
        "the other worker kept going: {elapsed:?}"
    );
    assert!(!out.join("heads.parquet").exists());
}
