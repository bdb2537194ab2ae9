//! The distributed system end to end: a coordinator and worker processes on
//! 127.0.0.1 give the same bytes as `headscan run`, whatever the worker count.

mod cluster;

use cluster::*;

#[test]
fn three_workers_one_worker_and_run_give_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let vis = ["--visualize", VISUALIZE];
    let reference = embedded_run_with(tmp.path(), &ds, "run-out", &vis);

    let c = coordinator(tmp.path(), 0, &[]);
    let _w1 = worker(tmp.path(), &c.url, 0, &[]);
    let one = tmp.path().join("one-worker");
    let o = submit(&c.url, &ds, &one, &["--wait", vis[0], vis[1]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = job_id(&o);
    assert!(first.starts_with("j-"), "{first}");

    let _w2 = worker(tmp.path(), &c.url, 0, &[]);
    let _w3 = worker(tmp.path(), &c.url, 0, &["--no-prefetch"]);
    let three = tmp.path().join("three-workers");
    let o = submit(
        &c.url,
        &ds,
        &three,
        &["--wait", "--name", "three", vis[0], vis[1]],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let second = job_id(&o);

    assert_same_tables(&reference, &one);
    assert_same_tables(&reference, &three);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(three.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["sequences"], 12);
    assert_eq!(summary["shards"], 6);
    assert!(three.join("report/index.html").is_file());
    // The workers' stored attention of the visualised records (in dataset
    // order, across shards) gives the cluster job its sequence pages.
    let stored = headscan_coordinator::sequence_table::decode(
        std::fs::read(three.join("sequences.parquet")).unwrap().into(),
        "sequences.parquet",
    )
    .unwrap();
    let ids: Vec<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["SYN#001", "SYN#004", "SYN#011"]);
    assert!(
        stored
            .iter()
            .all(|s| !s.weight.is_empty() && s.weight.iter().all(|&w| w >= 0.05))
    );
    let pages = |d: &std::path::Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("report/sequences"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (mine, theirs) = (pages(&three), pages(&reference));
    assert_eq!(mine.iter().filter(|p| p.0.ends_with(".html")).count(), 3);
    assert!(mine == theirs, "the same sequence pages as `headscan run`");

    // The partials sit at keys fixed by (job, shard), under the store.
    for shard in 0..6 {
        assert!(
            c.store
                .join(format!("jobs/{second}/partials/{shard:06}.pb"))
                .is_file()
        );
    }
    let s = status(&c.url, &second, &[]);
    assert!(s.contains("succeeded") && s.contains("shards 6/6"), "{s}");
    // A random sample (rows listed per shard) gives the same bytes too.
    let sampled_run = tmp.path().join("sampled-run");
    let mut args = vec!["run".to_string()];
    args.extend(demo_flags(&ds, &sampled_run));
    args.extend([
        "--sample".to_string(),
        "5".to_string(),
        "--seed".into(),
        "3".into(),
    ]);
    let o = headscan(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sampled = tmp.path().join("sampled");
    let o = submit(&c.url, &ds, &sampled, &["--wait", "--sample", "5", "--seed", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_tables(&sampled_run, &sampled);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sampled.join("summary.json")).unwrap()).unwrap();
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sampled_run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["sequences"], 5);
    assert_eq!(s["selection"], r["selection"], "same rows, same ids digest");
    assert_eq!(s["model_digest"], r["model_digest"]);

    // --if-changed: the same model files, dataset content and configuration
    // already succeeded (job `second`, the latest such), so nothing is run.
    let again = tmp.path().join("again");
    let o = submit(&c.url, &ds, &again, &["--if-changed", "--wait", vis[0], vis[1]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(job_id(&o), second);
    assert!(!again.exists(), "an unchanged job writes nothing");
    let o = submit(
        &c.url,
        &ds,
        &again,
        &["--if-changed", "--wait", "--threshold", "0.25"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(job_id(&o), second, "another threshold is another job");
    assert!(again.join("heads.parquet").is_file());

    let list = headscan(&["results", "list", "--coordinator", &c.url]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains(&first) && list.contains(&second), "{list}");
    let matrix = headscan(&["results", "list", "--matrix", "--coordinator", &c.url]);
    let matrix = String::from_utf8_lossy(&matrix.stdout);
    assert!(matrix.starts_with("model \\ dataset\t"), "{matrix}");
    assert_eq!(matrix.lines().count(), 2, "one model, one dataset: {matrix}");
}
