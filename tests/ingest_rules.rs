//! The behaviour `headscan ingest` promises: one test per bad-input rule,
//! atomic publication, round trips and stable content hashes, and the
//! contact rate of `dataset inspect` against straight loops.

mod common;

use common::{headscan, ingest_ok, manifest, records, test_data, write};

/// Ingests `fasta` (with optional annotations); returns the manifest and stderr.
fn ingest_fasta(
    fasta: &str,
    annotations: Option<&str>,
) -> (headscan_proto::manifest::Manifest, Vec<String>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.fasta", fasta);
    let out = tmp.path().join("ds");
    let tsv = annotations.map(|a| write(tmp.path(), "ann.tsv", a));
    let mut extra = Vec::new();
    if let Some(t) = &tsv {
        extra = vec!["--annotations", t.to_str().unwrap()];
    }
    let stderr = ingest_ok("fasta", &input, &out, &extra);
    let ids = records(&out).into_iter().map(|r| r.id).collect();
    (manifest(&out), ids, stderr)
}

fn kinds(m: &headscan_proto::manifest::Manifest) -> Vec<String> {
    m.ingest.rejections.iter().map(|r| r.kind.clone()).collect()
}

#[test]
fn letters_outside_the_alphabet_reject_only_that_record() {
    let (m, ids, stderr) = ingest_fasta(">good1\nMKTA\n>bad\nMK1TA\n>good2\nGGS\n", None);
    assert_eq!(ids, ["good1", "good2"]);
    assert_eq!(kinds(&m), ["invalid_letter"]);
    assert_eq!(m.ingest.rejections[0].record.as_deref(), Some("bad"));
    assert!(
        m.ingest.rejections[0].reason.contains("'1' at position 3"),
        "{}",
        m.ingest.rejections[0].reason
    );
    assert!(
        stderr.contains("3 records read, 2 written, 1 rejected (invalid_letter: 1)"),
        "{stderr}"
    );
}

#[test]
fn empty_sequences_are_rejected() {
    let (m, ids, _) = ingest_fasta(">e\n\n>ok\nMK\n", None);
    assert_eq!(ids, ["ok"]);
    assert_eq!(kinds(&m), ["empty_sequence"]);
}

#[test]
fn duplicate_ids_keep_the_first_record() {
    let (m, ids, _) = ingest_fasta(">a\nMK\n>b\nGG\n>a\nTT\n", None);
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(kinds(&m), ["duplicate_id"]);
    assert!(m.ingest.rejections[0].source.contains("in.fasta:3"));
}

#[test]
fn annotation_positions_outside_the_sequence_are_rejected() {
    let (m, ids, _) = ingest_fasta(">a\nMKT\n>b\nGG\n", Some("a\tbinding_site\t4\nb\tptm\t2\n"));
    assert_eq!(ids, ["b"]);
    assert_eq!(kinds(&m), ["position_out_of_range"]);
    assert!(m.ingest.rejections[0].reason.contains("position 4"));
}

#[test]
fn coordinate_sequence_length_mismatch_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let good =
        headscan_coordinator::ingest::proteinnet::format_record("ok", "MK", &[[0.0; 3], [100.0; 3]], "++");
    // Three residues but only two coordinate triples.
    let bad =
        headscan_coordinator::ingest::proteinnet::format_record("bad", "MKT", &[[0.0; 3], [100.0; 3]], "+++");
    let input = write(tmp.path(), "pn", &(bad + &good));
    let out = tmp.path().join("ds");
    ingest_ok("proteinnet", &input, &out, &[]);
    let m = manifest(&out);
    assert_eq!(kinds(&m), ["length_mismatch"]);
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn truncated_and_corrupt_records_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let good =
        headscan_coordinator::ingest::proteinnet::format_record("ok", "MK", &[[0.0; 3], [100.0; 3]], "++");
    let mut corrupt = headscan_coordinator::ingest::proteinnet::format_record(
        "corrupt",
        "MK",
        &[[0.0; 3], [100.0; 3]],
        "++",
    );
    corrupt = corrupt.replacen("\t100\t", "\tabc\t", 1);
    let truncated = "[ID]\ncut\n[PRIMARY]\nMKT\n[TERTIARY]\n1\t2\t3\n";
    let input = write(tmp.path(), "pn", &(corrupt + &good + truncated));
    let out = tmp.path().join("ds");
    ingest_ok("proteinnet", &input, &out, &[]);
    let m = manifest(&out);
    assert_eq!(kinds(&m), ["malformed_record", "malformed_record"]);
    assert_eq!(
        records(&out).iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["ok"]
    );

    // A corrupt structure file costs that file only.
    let dir = tmp.path().join("structs");
    std::fs::create_dir(&dir).unwrap();
    let data = test_data();
    if let Some(data) = &data {
        std::fs::copy(data.join("structures/1aki.pdb"), dir.join("1aki.pdb")).unwrap();
    }
    write(
        &dir,
        "zzzz.cif",
        "data_broken\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1 notanumber\n",
    );
    let out = tmp.path().join("st");
    if data.is_some() {
        ingest_ok("structures", &dir, &out, &[]);
        let m = manifest(&out);
        assert_eq!(m.rows, 1);
        assert_eq!(kinds(&m), ["malformed_record"]);
        assert!(m.ingest.rejections[0].reason.contains("zzzz.cif"));
    }
}

#[test]
fn unreadable_input_fails_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let o = headscan(&[
        "ingest",
        "--format",
        "fasta",
        "--input",
        "/nonexistent/x.fasta",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("/nonexistent/x.fasta"), "{stderr}");
    assert!(!out.join("manifest.json").exists());

    let not_lmdb = write(tmp.path(), "empty_dir_marker", "");
    let o = headscan(&[
        "ingest",
        "--format",
        "tape-lmdb",
        "--input",
        not_lmdb.parent().unwrap().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn truncated_lmdb_is_a_named_error_not_a_crash() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("cut.lmdb");
    std::fs::create_dir(&db).unwrap();
    let bytes = std::fs::read(data.join("provis/binding_site_valid.lmdb/data.mdb")).unwrap();
    std::fs::write(db.join("data.mdb"), &bytes[..200_000]).unwrap();
    let out = tmp.path().join("ds");
    let o = headscan(&[
        "ingest",
        "--format",
        "tape-lmdb",
        "--input",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Killed by a signal (SIGBUS from the memory map) has no exit code.
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {:?} {stderr}",
        o.status
    );
    assert!(!o.status.success());
    let file = db.join("data.mdb");
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("truncated LMDB: 200000 bytes"), "{stderr}");
    assert!(!out.join("manifest.json").exists());
}

#[test]
fn a_failed_ingest_leaves_no_manifest_and_no_shards() {
    let tmp = tempfile::tempdir().unwrap();
    // Every record bad: the ingest fails after reading, with nothing published.
    let input = write(tmp.path(), "in.fasta", ">a\n123\n>b\n\n");
    let out = tmp.path().join("ds");
    let o = headscan(&[
        "ingest",
        "--format",
        "fasta",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shard-rows",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no valid records"));
    assert!(!out.join("manifest.json").exists());
    assert!(!out.join("shards").exists());
    // Parquet input whose second file is not Parquet: refused before anything is written.
    let good = tmp.path().join("good");
    ingest_ok("fasta", &write(tmp.path(), "g.fasta", ">a\nMK\n"), &good, &[]);
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(good.join("shards/part-00000.parquet"), mixed.join("a.parquet")).unwrap();
    write(&mixed, "b.parquet", "not parquet");
    let out2 = tmp.path().join("ds2");
    let o = headscan(&[
        "ingest",
        "--format",
        "parquet",
        "--input",
        mixed.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("b.parquet"));
    assert!(!out2.join("manifest.json").exists());
}

#[test]
fn existing_dataset_needs_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.fasta", ">a\nMK\n");
    let out = tmp.path().join("ds");
    ingest_ok("fasta", &input, &out, &[]);
    let o = headscan(&[
        "ingest",
        "--format",
        "fasta",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    ingest_ok("fasta", &input, &out, &["--overwrite"]);
}

#[test]
fn parquet_round_trip_and_stable_hashes() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    let input = data.join("secondary_structure/CB513_HHblits.csv");
    ingest_ok("ss-csv", &input, &a, &["--shard-rows", "100"]);
    ingest_ok("ss-csv", &input, &b, &["--shard-rows", "100"]);
    ingest_ok("parquet", &a, &c, &["--shard-rows", "4096"]);
    let (ma, mb, mc) = (manifest(&a), manifest(&b), manifest(&c));
    assert_eq!(ma.shards.len(), 6);
    assert_eq!(mc.shards.len(), 1);
    // Same input → same bytes; any shard size → same content hash.
    assert_eq!(ma.content_hash, mb.content_hash);
    assert_eq!(ma.shards, mb.shards);
    assert_eq!(ma.content_hash, mc.content_hash);
    let (ra, rc) = (records(&a), records(&c));
    assert_eq!(ra.len(), rc.len());
    for (x, y) in ra.iter().zip(&rc) {
        assert_eq!(x.content_digest(), y.content_digest(), "{}", x.id);
        assert_eq!(x.source, y.source);
    }

    // Structures carry NaN coordinates and resolved masks: round trip those too.
    let s = tmp.path().join("s");
    let s2 = tmp.path().join("s2");
    ingest_ok("structures", &data.join("structures"), &s, &["--shard-rows", "7"]);
    ingest_ok("parquet", &s.join("shards"), &s2, &[]);
    assert_eq!(manifest(&s).content_hash, manifest(&s2).content_hash);
}

/// Cα coordinates of one chain read straight from PDB ATOM lines.
fn ca_from_pdb(text: &str, chain: char) -> Vec<[f64; 3]> {
    text.lines()
        .filter(|l| l.starts_with("ATOM") && &l[12..16] == " CA " && l.as_bytes()[21] as char == chain)
        .filter(|l| matches!(&l[16..17], " " | "A"))
        .map(|l| {
            [
                l[30..38].trim().parse().unwrap(),
                l[38..46].trim().parse().unwrap(),
                l[46..54].trim().parse().unwrap(),
            ]
        })
        .collect()
}

#[test]
fn contact_rate_matches_straight_loops() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("one");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(data.join("structures/1aki.pdb"), dir.join("1aki.pdb")).unwrap();
    let out = tmp.path().join("ds");
    ingest_ok("structures", &dir, &out, &[]);
    let o = headscan(&["dataset", "inspect", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let ca = ca_from_pdb(&std::fs::read_to_string(dir.join("1aki.pdb")).unwrap(), 'A');
    assert_eq!(ca.len(), 129);
    let (mut contacts, mut pairs) = (0u64, 0u64);
    for i in 0..ca.len() {
        for j in 0..ca.len() {
            if i < j && j - i >= 6 {
                pairs += 1;
                let d = ((ca[i][0] - ca[j][0]).powi(2)
                    + (ca[i][1] - ca[j][1]).powi(2)
                    + (ca[i][2] - ca[j][2]).powi(2))
                .sqrt();
                if d < 8.0 {
                    contacts += 1;
                }
            }
        }
    }
    let c = &summary["features"]["contact"];
    assert_eq!(c["hits"].as_u64(), Some(contacts));
    assert_eq!(c["total"].as_u64(), Some(pairs));
    assert!((c["rate"].as_f64().unwrap() - contacts as f64 / pairs as f64).abs() < 1e-12);
    assert_eq!(summary["rows"].as_u64(), Some(1));
}

#[test]
fn inspect_reports_token_feature_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let fasta = write(tmp.path(), "p.fasta", ">a\nMKTA\n>b\nGGGGGG\n");
    let tsv = write(
        tmp.path(),
        "a.tsv",
        "a\tbinding_site\t1\na\tbinding_site\t2\nb\tptm\t6\n",
    );
    let out = tmp.path().join("ds");
    ingest_ok("fasta", &fasta, &out, &["--annotations", tsv.to_str().unwrap()]);
    let o = headscan(&["dataset", "inspect", out.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["features"]["binding_site"]["hits"], 2);
    assert_eq!(s["features"]["binding_site"]["total"], 10);
    assert_eq!(s["features"]["ptm"]["hits"], 1);
    assert_eq!(s["features"]["aa:G"]["hits"], 6);
    assert!(s["features"].get("contact").is_none());
    let table = headscan(&["dataset", "inspect", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("binding_site"));
}
