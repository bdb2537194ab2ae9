//! Engine-native jobs (`headscan plan` / `task` / `reduce`, as Slurm arrays
//! and Kubernetes Indexed Jobs run them): the same partial keys and bytes
//! as the coordinator's, exactly-once commits, a reduce that names the
//! missing shards, and tables equal to the coordinator's and `headscan run`'s.

mod cluster;

use std::path::Path;
use std::process::{Command, Output};

use cluster::*;

fn plan(plan_dir: &Path, ds: &Path, results: &Path, extra: &[&str]) -> Output {
    let r = root();
    let mut args = vec![
        "plan".to_string(),
        "--config".into(),
        r.join("configs/demo.toml").display().to_string(),
        "--model".into(),
        r.join("tests/fixtures/models/esm2").display().to_string(),
        "--dataset".into(),
        ds.display().to_string(),
        "--results".into(),
        results.display().to_string(),
        "--out".into(),
        plan_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    headscan(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The plan's job id, from plan.json.
fn job_of(plan_dir: &Path) -> String {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan_dir.join("plan.json")).unwrap()).unwrap();
    plan["job_id"].as_str().unwrap().to_string()
}

#[test]
fn plan_task_reduce_equals_the_coordinator_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let vis = ["--visualize", VISUALIZE];
    let reference = embedded_run_with(tmp.path(), &ds, "run-out", &vis);

    // The coordinator's job, for its partials.
    let c = coordinator(tmp.path(), 0, &[]);
    let _w = worker(tmp.path(), &c.url, 0, &[]);
    let coord_out = tmp.path().join("coordinator-out");
    let o = submit(&c.url, &ds, &coord_out, &["--wait", vis[0], vis[1]]);
    let coord_job = job_id(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let plan_dir = tmp.path().join("plan");
    let results = tmp.path().join("engine-out");
    let stdout = ok(&plan(&plan_dir, &ds, &results, &vis));
    assert_eq!(
        stdout.lines().last(),
        Some("6"),
        "the task count is the last line"
    );
    let job = job_of(&plan_dir);

    // A second plan at the same place is refused unless asked for.
    let again = plan(&plan_dir, &ds, &results, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));

    // Out of order; shard 1 by the Slurm variable, shard 4 by the Kubernetes one.
    let plan_url = plan_dir.display().to_string();
    for i in [5u32, 0, 2] {
        ok(&headscan(&[
            "task",
            "--plan",
            &plan_url,
            "--index",
            &i.to_string(),
        ]));
    }
    let o = Command::new(bin())
        .args(["task", "--plan", &plan_url])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    ok(&o);
    // Reduce refuses while shards 3 and 4 are missing, and names them.
    let o = headscan(&["reduce", "--plan", &plan_url]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 of 6 shard(s) not committed yet: 3, 4"), "{err}");
    assert!(!results.exists(), "a refused reduce writes nothing");

    let o = Command::new(bin())
        .args(["task", "--plan", &plan_url])
        .env("JOB_COMPLETION_INDEX", "4")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    ok(&o);
    ok(&headscan(&["task", "--plan", &plan_url, "--index", "3"]));

    // Exactly once: a re-run of a committed shard changes nothing.
    let marker = plan_dir.join(format!("jobs/{job}/commits/000002.json"));
    let before = std::fs::metadata(&marker).unwrap().modified().unwrap();
    ok(&headscan(&["task", "--plan", &plan_url, "--index", "2"]));
    assert_eq!(std::fs::metadata(&marker).unwrap().modified().unwrap(), before);

    // An index beyond the plan is a clear error.
    let o = headscan(&["task", "--plan", &plan_url, "--index", "6"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no task 6"));

    // The partials sit at the coordinator's keys with the coordinator's bytes.
    for shard in 0..6 {
        let name = format!("partials/{shard:06}.pb");
        let mine = std::fs::read(plan_dir.join(format!("jobs/{job}/{name}"))).unwrap();
        let theirs = std::fs::read(c.store.join(format!("jobs/{coord_job}/{name}"))).unwrap();
        assert!(mine == theirs, "partial {shard} differs from the coordinator's");
    }

    let stdout = ok(&headscan(&["reduce", "--plan", &plan_url]));
    assert_eq!(stdout.lines().last(), Some(results.to_str().unwrap()));
    assert_same_tables(&reference, &results);
    assert_same_tables(&coord_out, &results);
    let aa = |d: &Path| std::fs::read(d.join("aa_similarity.parquet")).unwrap();
    assert!(aa(&reference) == aa(&results), "aa_similarity.parquet differs");
    let summary = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap()
    };
    let (s, r) = (summary(&results), summary(&reference));
    // (config_digest covers the output URL, which differs.)
    for key in [
        "selection",
        "model_digest",
        "model_config_digest",
        "model_family",
        "dataset_content_hash",
        "sequences",
        "shards",
        "complete",
    ] {
        assert_eq!(s[key], r[key], "summary.json {key}");
    }
    assert_eq!(s["job_id"], job.as_str());
    assert!(results.join("report/index.html").is_file());
}

#[test]
fn plan_and_task_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let o = headscan(&["reduce", "--plan", missing.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("plan.json") && err.contains("no plan there"),
        "{err}"
    );

    let o = Command::new(bin())
        .args(["task", "--plan", missing.to_str().unwrap()])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("SLURM_ARRAY_TASK_ID"), "{err}");

    let o = Command::new(bin())
        .args(["task", "--plan", missing.to_str().unwrap()])
        .env("SLURM_ARRAY_TASK_ID", "x1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a shard index"));

    // A dataset with no rows selected cannot be planned.
    let ds = demo_dataset(tmp.path(), 4);
    let o = plan(&tmp.path().join("p"), &ds, &tmp.path().join("o"), &[]);
    ok(&o);
    let empty_cfg = tmp.path().join("bad.toml");
    std::fs::write(&empty_cfg, "features = [\"nonsense\"]\n").unwrap();
    let o = headscan(&[
        "plan",
        "--config",
        empty_cfg.to_str().unwrap(),
        "--model",
        root().join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        tmp.path().join("q").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!tmp.path().join("q/plan.json").exists());
}
