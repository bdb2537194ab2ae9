//! `headscan ingest` on every format: the real files of ../shared/data
//! (counts checked against its SOURCES.md) and synthetic files made here.

mod common;

use std::collections::HashMap;

use common::{headscan, ingest_ok, manifest, records, test_data, write};

#[test]
fn provis_binding_site_lmdb() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bind");
    ingest_ok(
        "tape-lmdb",
        &data.join("provis/binding_site_valid.lmdb"),
        &out,
        &[],
    );
    let m = manifest(&out);
    assert_eq!(m.rows, 1418, "SOURCES.md: 1418 records");
    assert_eq!(m.ingest.records_rejected, 0);
    let recs = records(&out);
    assert_eq!(recs.len(), 1418);
    let with_sites = recs
        .iter()
        .filter(|r| !r.binding_sites.as_ref().unwrap().is_empty())
        .count();
    assert_eq!(with_sites, 1016, "SOURCES.md: 1016 records have a binding site");
    // One of the 17,599 site entries occurs in no record's positions: one warning.
    assert_eq!(m.ingest.warnings_total, 1, "{:?}", m.ingest.warnings);
    let first = &recs[0];
    assert_eq!(first.id, "4udx.X", "record 0 is 4udx.X per SOURCES.md");
    let lengths: Vec<usize> = recs.iter().map(|r| r.len()).collect();
    assert_eq!(lengths.iter().min(), Some(&20));
    assert_eq!(lengths.iter().max(), Some(&1126));
}

#[test]
fn proteinnet_text_sample() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pn");
    ingest_ok("proteinnet", &data.join("proteinnet/text_sample"), &out, &[]);
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.id, "TBM#T0366");
    assert_eq!(r.len(), 106);
    let text = std::fs::read_to_string(data.join("proteinnet/text_sample")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mask = lines[lines.iter().position(|l| *l == "[MASK]").unwrap() + 1];
    let resolved = r.resolved.as_ref().unwrap();
    assert_eq!(
        resolved.iter().filter(|x| **x).count(),
        mask.chars().filter(|c| *c == '+').count()
    );
    // Cα of the first resolved residue: the middle atom of the triple, pm → Å.
    let t = lines.iter().position(|l| *l == "[TERTIARY]").unwrap();
    let i = mask.find('+').unwrap();
    let x: Vec<f32> = lines[t + 1].split('\t').map(|v| v.parse().unwrap()).collect();
    let ca = r.ca_coords.as_ref().unwrap();
    assert!((ca[3 * i] - x[3 * i + 1] / 100.0).abs() < 1e-4);
    assert!(ca[0].is_nan(), "unresolved residues carry NaN coordinates");
}

#[test]
fn pdb_and_mmcif_structures() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("st");
    ingest_ok(
        "structures",
        &data.join("structures"),
        &out,
        &["--shard-rows", "16"],
    );
    let m = manifest(&out);
    assert_eq!(m.rows, 66, "SOURCES.md: 66 protein chains");
    assert_eq!(m.shards.len(), 5);
    let recs = records(&out);
    let ca_count: HashMap<&str, usize> = recs
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.resolved.as_ref().unwrap().iter().filter(|x| **x).count(),
            )
        })
        .collect();
    // "residues with CA" per chain, SOURCES.md table (gemmi counts).
    for (id, n) in [
        ("1aki.A", 129),
        ("1dix.A", 208),
        ("1f2n.C", 212),
        ("1igy.B", 434),
        ("1ncb.N", 389),
        ("1ncb.L", 214),
        ("1ncb.H", 221),
        ("2d0f.A", 637),
        ("4day.C", 12),
        ("1hwu.E", 84),
        ("5zng.C", 62),
        ("7gsa.A", 284),
        ("1k6p.A", 99),
        ("1k6p.B", 99),
    ] {
        assert_eq!(ca_count.get(id), Some(&n), "{id}");
    }
    let distinct: std::collections::HashSet<&str> = recs.iter().map(|r| r.sequence.as_str()).collect();
    assert_eq!(distinct.len(), 59, "SOURCES.md: 59 distinct chain sequences");
}

#[test]
fn cb513_secondary_structure_csv() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cb513");
    ingest_ok(
        "ss-csv",
        &data.join("secondary_structure/CB513_HHblits.csv"),
        &out,
        &[],
    );
    let m = manifest(&out);
    assert_eq!(m.rows, 511);
    assert_eq!(m.residues, 144_011);
    let recs = records(&out);
    let mut counts: HashMap<char, usize> = HashMap::new();
    for r in &recs {
        for c in r.ss8.as_ref().unwrap().chars() {
            *counts.entry(c).or_default() += 1;
        }
    }
    for (c, n) in [
        ('H', 43037),
        ('E', 30090),
        ('T', 16457),
        ('S', 13541),
        ('G', 5173),
        ('B', 1831),
        ('I', 796),
    ] {
        assert_eq!(counts[&c], n, "{c}");
    }
    // DSSP coil (C) → '-', disordered residues (disorder 0.0, labelled C) → unlabelled '?'.
    assert_eq!(counts[&'?'], 3525);
    assert_eq!(counts[&'-'] + counts[&'?'], 33086);
    let unresolved: usize = recs
        .iter()
        .map(|r| r.resolved.as_ref().unwrap().iter().filter(|x| !**x).count())
        .sum();
    assert_eq!(unresolved, 3525);
}

#[test]
fn rcsb_ss_txt() {
    let tmp = tempfile::tempdir().unwrap();
    // Fixed-width lines (here 10), blanks are coil; the second entry's last
    // secstr line lost its trailing blanks.
    let text = ">101M:A:sequence\nMVLSEGEWQL\nVLHV\n>101M:A:secstr\n    HHHHHH\nHHGG\n>102L:B:sequence\nMNIFEMLRID\nEG\n>102L:B:secstr\n  HHHHHH\n  \n";
    let input = write(tmp.path(), "ss.txt", text);
    let out = tmp.path().join("ds");
    ingest_ok("rcsb-ss", &input, &out, &[]);
    let recs = records(&out);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].id, "101m.A");
    assert_eq!(recs[0].sequence, "MVLSEGEWQLVLHV");
    assert_eq!(recs[0].ss8.as_deref(), Some("----HHHHHHHHGG"));
    assert_eq!(recs[1].ss8.as_deref(), Some("--HHHHHH----"));
}

#[test]
fn uniprot_flat_file_gz() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let text = "ID   A_HUMAN   Reviewed;   10 AA.\nAC   P11111;\nFT   BINDING         3..4\nFT                   /ligand=\"Zn(2+)\"\nFT   MOD_RES         9\nSQ   SEQUENCE   10 AA;  1 MW;  0 CRC64;\n     MKTAYIAKQR\n//\nID   B_HUMAN   Reviewed;   4 AA.\nAC   P22222;\nFT   ACT_SITE        2\nSQ   SEQUENCE   4 AA;  1 MW;  0 CRC64;\n     MKTA\n//\n";
    let path = tmp.path().join("sprot.dat.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    let out = tmp.path().join("ds");
    ingest_ok("uniprot", &path, &out, &[]);
    let recs = records(&out);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].binding_sites, Some(vec![2, 3]));
    assert_eq!(recs[0].ptm_sites, Some(vec![8]));
    assert_eq!(recs[1].binding_sites, Some(vec![1]));
}

#[test]
fn fasta_with_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let fasta = write(
        tmp.path(),
        "p.fasta",
        ">p1 first\nMKTAYIAKQR\n>p2\nGSHMLEDPVA\nGK\n",
    );
    let tsv = write(
        tmp.path(),
        "ann.tsv",
        "id\tfeature\tposition\np1\tbinding_site\t3\np1\tptm\t10\np2\tmetal\t12\np2\tsite:metal\t1\n",
    );
    let out = tmp.path().join("ds");
    ingest_ok("fasta", &fasta, &out, &["--annotations", tsv.to_str().unwrap()]);
    let recs = records(&out);
    assert_eq!(recs[0].binding_sites, Some(vec![2]));
    assert_eq!(recs[0].ptm_sites, Some(vec![9]));
    assert_eq!(recs[1].sequence, "GSHMLEDPVAGK");
    let sites = recs[1].sites.as_ref().unwrap();
    assert_eq!(
        (sites[0].name.as_str(), sites[0].positions.clone()),
        ("metal", vec![0, 11])
    );
    let m = manifest(&out);
    assert_eq!(m.columns.binding_sites, 2);
    assert_eq!(m.columns.sites.get("metal"), Some(&1));
}

#[test]
fn synthetic_proteinnet_and_structure_files() {
    let tmp = tempfile::tempdir().unwrap();
    // ProteinNet: two records written by the project's own formatter.
    let text = headscan_coordinator::ingest::proteinnet::format_record(
        "S#1",
        "MKT",
        &[[100.0, 0.0, 0.0], [200.0, 0.0, 0.0], [0.0; 3]],
        "++-",
    ) + &headscan_coordinator::ingest::proteinnet::format_record(
        "S#2",
        "GG",
        &[[0.0; 3], [1.0; 3]],
        "++",
    );
    let pn = write(tmp.path(), "pn.txt", &text);
    let out = tmp.path().join("pn");
    ingest_ok("proteinnet", &pn, &out, &[]);
    let recs = records(&out);
    assert_eq!(recs.len(), 2);
    assert_eq!(
        &recs[0].ca_coords.as_ref().unwrap()[0..6],
        &[1.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    );

    // A synthetic PDB file with two chains, a ligand, water and a residue missing its CA.
    let pdb = synthetic_pdb(&[('A', &["MET", "LYS", "MSE"]), ('B', &["GLY", "ALA"])]);
    let dir = tmp.path().join("structs");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "9xyz.pdb", &pdb);
    let out = tmp.path().join("st");
    ingest_ok("structures", &dir, &out, &[]);
    let recs = records(&out);
    let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["9xyz.A", "9xyz.B"]);
    assert_eq!(recs[0].sequence, "MKM");
    assert_eq!(recs[1].resolved, Some(vec![true, false]));
}

/// A minimal PDB file: each residue has N, CA, C atoms on a line (the last
/// residue of chain B has no CA), then a HETATM ligand and a water.
pub fn synthetic_pdb(chains: &[(char, &[&str])]) -> String {
    let mut s =
        String::from("HEADER    SYNTHETIC                               01-JAN-00   9XYZ              \n");
    let mut serial = 1;
    for (c, (chain, residues)) in chains.iter().enumerate() {
        for (i, name) in residues.iter().enumerate() {
            let record = if *name == "MSE" { "HETATM" } else { "ATOM  " };
            for atom in ["N", "CA", "C"] {
                if *chain == 'B' && i + 1 == residues.len() && atom == "CA" {
                    continue;
                }
                let x = 3.8 * i as f32
                    + if atom == "N" {
                        -1.0
                    } else if atom == "C" {
                        1.0
                    } else {
                        0.0
                    };
                let element = &atom[..1];
                s.push_str(&format!(
                    "{record}{serial:>5} {atom:<4} {name:>3} {chain}{resseq:>4}    {x:>8.3}{y:>8.3}{z:>8.3}  1.00 10.00          {element:>2}\n",
                    resseq = i + 1,
                    y = 10.0 * c as f32,
                    z = 0.0
                ));
                serial += 1;
            }
        }
        s.push_str(&format!(
            "TER   {serial:>5}      {:>3} {chain}{:>4}\n",
            residues.last().unwrap(),
            residues.len()
        ));
        serial += 1;
    }
    s.push_str(&format!(
        "HETATM{serial:>5}  C1  LIG A 101      50.000  50.000  50.000  1.00 10.00           C\n"
    ));
    s.push_str(&format!(
        "HETATM{:>5}  O   HOH A 201      60.000  60.000  60.000  1.00 10.00           O\n",
        serial + 1
    ));
    s.push_str("END\n");
    s
}

#[test]
fn unknown_format_is_refused_by_the_cli() {
    let o = headscan(&["ingest", "--format", "genbank", "--input", "x", "--out", "y"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown format"));
}

/// Canonical records with every column filled, for the Parquet codec tests.
fn full_records(n: usize) -> Vec<headscan_proto::record::ProteinRecord> {
    use headscan_proto::record::{ProteinRecord, SiteAnnotation};
    const AA: &[u8] = b"ACDEFGHIKLMNPQRSTVWY";
    (0..n)
        .map(|i| {
            let len = 20 + (i * 7) % 60;
            let seq: String = (0..len).map(|k| AA[(i + 3 * k) % 20] as char).collect();
            let mut r = ProteinRecord::new(format!("p{i}"), seq, format!("made.parquet:{i}"));
            // Canonical: an unresolved residue (every fifth) has NaN coordinates.
            let resolved: Vec<bool> = (0..len).map(|k| k % 5 != 0).collect();
            r.ca_coords = Some(
                (0..3 * len)
                    .map(|k| {
                        if resolved[k / 3] {
                            (k as f32) * 1.5 + i as f32
                        } else {
                            f32::NAN
                        }
                    })
                    .collect(),
            );
            r.resolved = Some(resolved);
            r.ss8 = Some((0..len).map(|k| ['H', 'E', '-', 'T'][(k / 4 + i) % 4]).collect());
            r.binding_sites = Some(vec![1, 3, (len - 1) as i32]);
            r.ptm_sites = Some(vec![]);
            r.sites = Some(vec![SiteAnnotation {
                name: "active".into(),
                positions: vec![0, 2],
            }]);
            r
        })
        .collect()
}

/// What pandas, pyarrow, Spark and DuckDB write: Snappy (their default),
/// LZ4, GZIP, ZSTD and uncompressed Parquet all ingest and round-trip.
#[test]
fn parquet_input_in_every_common_codec() {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, GzipLevel, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let made = full_records(300);
    let batch = headscan_proto::record::to_batch(&made).unwrap();
    let codecs = [
        ("snappy", Compression::SNAPPY),
        ("lz4_raw", Compression::LZ4_RAW),
        ("lz4_hadoop", Compression::LZ4),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("uncompressed", Compression::UNCOMPRESSED),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut hashes = Vec::new();
    for (name, codec) in codecs {
        let path = tmp.path().join(format!("{name}.parquet"));
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_data_page_row_count_limit(64)
            .set_max_row_group_row_count(Some(128))
            .build();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let out = tmp.path().join(format!("ds-{name}"));
        ingest_ok("parquet", &path, &out, &[]);
        let m = manifest(&out);
        assert_eq!(m.rows, 300, "{name}");
        assert_eq!(m.ingest.records_rejected, 0, "{name}: {:?}", m.ingest.rejections);
        let back = records(&out);
        assert_eq!(back.len(), made.len(), "{name}");
        for (x, y) in back.iter().zip(&made) {
            // content_digest covers every column (NaN coordinates included).
            assert_eq!(
                x.content_digest(),
                y.content_digest(),
                "{name}: row {} round-trips",
                y.id
            );
            assert_eq!((&x.id, &x.source), (&y.id, &y.source), "{name}");
        }
        hashes.push(m.content_hash);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1, "the codec does not change the dataset");
}

#[test]
fn parquet_with_pandas_default_widths_is_read_and_bad_columns_are_named() {
    use arrow::array::{ArrayRef, Float64Builder, Int64Builder, ListBuilder, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, cols: Vec<(&str, ArrayRef)>| {
        let path = tmp.path().join(name);
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    };
    // int64 sites and float64 coordinates, as pandas and pyarrow write them by default.
    let mut sites = ListBuilder::new(Int64Builder::new());
    sites.values().append_slice(&[0, 2]);
    sites.append(true);
    let mut ca = ListBuilder::new(Float64Builder::new());
    ca.values()
        .append_slice(&[0.0, 0.0, 0.0, 3.8, 0.0, 0.0, 7.6, 0.0, 0.0]);
    ca.append(true);
    let ok = write(
        "wide.parquet",
        vec![
            ("id", Arc::new(StringArray::from(vec!["p1"])) as ArrayRef),
            ("sequence", Arc::new(StringArray::from(vec!["MKV"])) as ArrayRef),
            ("binding_sites", Arc::new(sites.finish()) as ArrayRef),
            ("ca_coords", Arc::new(ca.finish()) as ArrayRef),
        ],
    );
    let out = tmp.path().join("ok");
    ingest_ok("parquet", &ok, &out, &[]);
    let back = records(&out);
    assert_eq!(back[0].binding_sites, Some(vec![0, 2]));
    assert_eq!(back[0].ca_coords.as_ref().unwrap()[3], 3.8f32);
    // A column of the wrong type: every record is rejected and the error names row and column.
    let bad = write(
        "bad.parquet",
        vec![
            ("id", Arc::new(StringArray::from(vec!["p1"])) as ArrayRef),
            ("sequence", Arc::new(StringArray::from(vec!["MKV"])) as ArrayRef),
            (
                "binding_sites",
                Arc::new(StringArray::from(vec!["0,2"])) as ArrayRef,
            ),
        ],
    );
    let o = headscan(&[
        "ingest",
        "--format",
        "parquet",
        "--input",
        bad.to_str().unwrap(),
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("binding_sites") && err.contains("bad.parquet"),
        "{err}"
    );
}
