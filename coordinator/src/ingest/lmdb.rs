//! TAPE / provis LMDB databases: keys `"0"…"n-1"` (plus `num_examples`),
//! values pickled dicts, read with LMDB opened read-only and lock-free.
//!
//! Recognised record layouts (keys of the dict):
//! - provis binding sites / modifications: `primary`, `positions` (residue
//!   numbers), `sites` or `modifications` (residue numbers, not indices). As
//!   provis does, residue i is labelled iff `positions[i]` is in the list;
//!   label numbers that match no position are dropped with a warning.
//! - TAPE proteinnet: `primary`, `tertiary` (L×3 Cα, Å; or L×3×3 N/Cα/C),
//!   `valid_mask`.
//! - TAPE secondary structure: `primary`, `ss8` (indices into TAPE's
//!   `G H I B E S T <blank>`, or a string).
//!
//! Records are read in numeric key order, so row order is the dataset's index order.

use std::collections::HashSet;
use std::path::Path;

use headscan_proto::record::ProteinRecord;
use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};

use super::pickle::{PickleValue, parse_pickle};
use super::{IngestError, RecordSource, SourceItem, rejection};

/// TAPE's ss8 index → DSSP letter (index 7 is DSSP's blank, i.e. coil).
pub const TAPE_SS8: [char; 8] = ['G', 'H', 'I', 'B', 'E', 'S', 'T', '-'];

/// LMDB's meta page magic number (`MDB_MAGIC`).
const MDB_MAGIC: u32 = 0xBEEF_C0DE;
/// Size of an LMDB page header on 64-bit builds (`PAGEHDRSZ`).
const PAGE_HEADER: usize = 16;
/// Offsets inside a meta page (after the page header) of 64-bit LMDB:
/// `mm_magic`, the page size (`mm_dbs[FREE_DBI].md_pad`), `mm_last_pg`, `mm_txnid`.
const META_MAGIC: usize = PAGE_HEADER;
const META_PSIZE: usize = PAGE_HEADER + 24;
const META_LAST_PG: usize = PAGE_HEADER + 120;
const META_TXNID: usize = PAGE_HEADER + 128;

/// Checks an LMDB data file against its own meta pages before it is memory
/// mapped: reading a page past the end of a mapped file kills the process
/// with SIGBUS, so a truncated file must be refused here.
///
/// Reads the two meta pages (pages 0 and 1), takes the newer one by
/// transaction id, and requires the file to hold pages `0..=mm_last_pg`.
pub fn check_data_file(file: &Path) -> Result<(), IngestError> {
    use std::io::{Read, Seek, SeekFrom};
    let fail = |reason: String| IngestError::input(file.display(), reason);
    let mut f = std::fs::File::open(file).map_err(|e| fail(e.to_string()))?;
    let len = f.metadata().map_err(|e| fail(e.to_string()))?.len();
    let meta_end = (META_TXNID + 8) as u64;
    let too_short = |needs: u64| {
        fail(format!(
            "truncated LMDB: {len} bytes, too short to hold its meta pages (needs at least {needs})"
        ))
    };
    if len < meta_end {
        return Err(too_short(meta_end));
    }
    let mut first = vec![0u8; META_TXNID + 8];
    f.read_exact(&mut first).map_err(|e| fail(e.to_string()))?;
    let u32_at = |b: &[u8], at: usize| {
        let mut x = [0u8; 4];
        x.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(x)
    };
    let u64_at = |b: &[u8], at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(x)
    };
    if u32_at(&first, META_MAGIC) != MDB_MAGIC {
        return Err(fail(
            "not an LMDB data file (no LMDB meta page magic at its start; only 64-bit little-endian LMDB is read)".into(),
        ));
    }
    let page_size = u64::from(u32_at(&first, META_PSIZE));
    if !(512..=1 << 20).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(fail(format!(
            "damaged LMDB: meta page gives page size {page_size}"
        )));
    }
    if len < page_size + meta_end {
        return Err(too_short(page_size + meta_end));
    }
    let mut second = vec![0u8; META_TXNID + 8];
    f.seek(SeekFrom::Start(page_size))
        .and_then(|_| f.read_exact(&mut second))
        .map_err(|e| fail(e.to_string()))?;
    // LMDB uses the meta page of the newer transaction.
    let second_ok = u32_at(&second, META_MAGIC) == MDB_MAGIC;
    let newest = if second_ok && u64_at(&second, META_TXNID) > u64_at(&first, META_TXNID) {
        &second
    } else {
        &first
    };
    let last_pg = u64_at(newest, META_LAST_PG);
    let pages = last_pg.saturating_add(1).max(2);
    let needs = pages.saturating_mul(page_size);
    if len < needs {
        return Err(fail(format!(
            "truncated LMDB: {len} bytes, environment needs {needs} ({pages} pages of {page_size} bytes)"
        )));
    }
    Ok(())
}

fn open_env(path: &Path) -> Result<Env, IngestError> {
    let (dir_flags, target, data_file) = if path.is_file() {
        (
            EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_SUB_DIR,
            path,
            path.to_path_buf(),
        )
    } else if path.join("data.mdb").is_file() {
        (
            EnvFlags::READ_ONLY | EnvFlags::NO_LOCK,
            path,
            path.join("data.mdb"),
        )
    } else {
        return Err(IngestError::input(
            path.display(),
            "not an LMDB directory (no data.mdb) or file",
        ));
    };
    check_data_file(&data_file)?;
    let mut options = EnvOpenOptions::new();
    options.max_dbs(1);
    // SAFETY: the environment is opened read-only and without the lock file;
    // heed requires `unsafe` because LMDB cannot detect another process
    // writing the same file, which read-only ingest of a finished database rules out.
    unsafe {
        options.flags(dir_flags);
        options.open(target)
    }
    .map_err(|e| IngestError::input(path.display(), format!("LMDB: {e}")))
}

/// The keys of a TAPE LMDB: record keys in numeric order, then any others.
struct Keys {
    /// `(index, raw key)` of the numbered records, sorted by index.
    records: Vec<(u64, Vec<u8>)>,
    /// Keys that are neither numbers nor `num_examples`.
    stray: Vec<String>,
}

/// Numbered keys (sorted numerically) and other keys of the main database.
fn read_keys(env: &Env) -> Result<Keys, heed::Error> {
    let rtxn = env.read_txn()?;
    let db: Option<Database<Bytes, Bytes>> = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| {
            dbo.open_database(rtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();
    let Some(db) = db else {
        return Ok(Keys {
            records: Vec::new(),
            stray: Vec::new(),
        });
    };
    let rtxn = env.read_txn()?;
    let mut keys = Vec::new();
    let mut stray = Vec::new();
    for entry in db.iter(&rtxn)? {
        let (k, _) = entry?;
        match std::str::from_utf8(k).ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) => keys.push((n, k.to_vec())),
            None if k == b"num_examples" => {}
            None => stray.push(String::from_utf8_lossy(k).into_owned()),
        }
    }
    keys.sort();
    Ok(Keys { records: keys, stray })
}

/// Opens a TAPE / provis LMDB (the `.lmdb` directory or its `data.mdb`).
///
/// A reader thread owns the environment and sends items through a bounded
/// channel, so memory stays bounded by the channel, not by the database.
pub fn open(path: &Path) -> Result<RecordSource, IngestError> {
    let env = open_env(path)?;
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let display = path.display().to_string();
    let Keys { records: keys, stray } =
        read_keys(&env).map_err(|e| IngestError::input(&display, format!("LMDB: {e}")))?;
    if keys.is_empty() {
        return Err(IngestError::input(&display, "LMDB holds no numbered records"));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<SourceItem, IngestError>>(256);
    std::thread::spawn(move || {
        for k in stray {
            let w = format!("{label}: key {k:?} is not a record index; skipped");
            if tx.send(Ok(SourceItem::Warning(w))).is_err() {
                return;
            }
        }
        let fail = |e: heed::Error| Err(IngestError::input(&display, format!("LMDB: {e}")));
        let opened = env.read_txn().and_then(|rtxn| {
            env.open_databases_and_commit(rtxn, |dbo, rtxn| {
                dbo.open_database(rtxn, None).map(CommitOrAbort::<_, ()>::Commit)
            })
        });
        let db: Database<Bytes, Bytes> = match opened.map(|c| c.unwrap_commit()) {
            Ok(Some(db)) => db,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(fail(e));
                return;
            }
        };
        let rtxn = match env.read_txn() {
            Ok(t) => t,
            Err(e) => {
                let _ = tx.send(fail(e));
                return;
            }
        };
        for (index, key) in keys {
            let source = format!("{label}:{index}");
            let items = match db.get(&rtxn, &key) {
                Ok(Some(bytes)) => match parse_pickle(bytes) {
                    Ok(v) => convert(&v, index, &source),
                    Err(e) => vec![SourceItem::Rejected(rejection(
                        None,
                        source.clone(),
                        "malformed_record",
                        format!("record {index}: value is not a readable pickle: {e}"),
                    ))],
                },
                Ok(None) => continue,
                Err(e) => {
                    let _ = tx.send(fail(e));
                    return;
                }
            };
            for item in items {
                if tx.send(Ok(item)).is_err() {
                    return; // the ingest stopped reading
                }
            }
        }
    });
    Ok(Box::new(rx.into_iter()))
}

/// Converts one unpickled TAPE/provis dict into a record (plus warnings).
pub fn convert(value: &PickleValue, index: u64, source: &str) -> Vec<SourceItem> {
    let id = value
        .get("id")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .unwrap_or_else(|| index.to_string());
    let reject = |kind: &str, why: String| {
        vec![SourceItem::Rejected(rejection(
            Some(&id),
            source,
            kind,
            format!("record {index} (`{id}`): {why}"),
        ))]
    };
    if !matches!(value, PickleValue::Dict(_)) {
        return reject("malformed_record", "value is not a dict".into());
    }
    let Some(primary) = value.get("primary").and_then(|p| p.as_str()) else {
        return reject("malformed_record", "no `primary` sequence string".into());
    };
    let len = primary.chars().count();
    let mut record = ProteinRecord::new(id.clone(), primary, source);
    let mut warnings = Vec::new();

    // provis: labels in residue numbering, mapped through `positions`.
    for (key, is_binding) in [("sites", true), ("modifications", false)] {
        let Some(labels) = value.get(key) else { continue };
        let Some(labels) = labels.to_i64_vec() else {
            return reject("malformed_record", format!("`{key}` is not a list of integers"));
        };
        let Some(positions) = value.get("positions").and_then(|p| p.to_i64_vec()) else {
            return reject("malformed_record", format!("`{key}` without a `positions` list"));
        };
        if positions.len() != len {
            return reject(
                "length_mismatch",
                format!("{} positions for {len} residues", positions.len()),
            );
        }
        let wanted: HashSet<i64> = labels.iter().copied().collect();
        let indices: Vec<i32> = positions
            .iter()
            .enumerate()
            .filter(|(_, p)| wanted.contains(p))
            .map(|(i, _)| i as i32)
            .collect();
        let present: HashSet<i64> = positions.iter().copied().collect();
        let missing: Vec<i64> = labels.iter().copied().filter(|l| !present.contains(l)).collect();
        if !missing.is_empty() {
            warnings.push(SourceItem::Warning(format!(
                "{source} (`{id}`): {key} residue number(s) {missing:?} match no entry of `positions`; dropped, as provis does"
            )));
        }
        if is_binding {
            record.binding_sites = Some(indices);
        } else {
            record.ptm_sites = Some(indices);
        }
    }

    // TAPE proteinnet: Cα coordinates and a validity mask.
    if let Some(t) = value.get("tertiary") {
        let (Some(shape), Some(values)) = (t.shape(), t.to_f64_vec()) else {
            return reject("malformed_record", "`tertiary` is not a numeric array".into());
        };
        let ca: Vec<f32> = match shape.as_slice() {
            [n, 3] if *n == len => values.iter().map(|v| *v as f32).collect(),
            [n, 3, 3] if *n == len => (0..len)
                .flat_map(|i| (0..3).map(move |k| (i, k)))
                .map(|(i, k)| values[9 * i + 3 + k] as f32)
                .collect(),
            other => {
                return reject(
                    "length_mismatch",
                    format!("`tertiary` has shape {other:?} for {len} residues (expected [{len}, 3])"),
                );
            }
        };
        record.ca_coords = Some(ca);
        if let Some(mask) = value.get("valid_mask") {
            let Some(mask) = mask.to_bool_vec() else {
                return reject("malformed_record", "`valid_mask` is not a boolean array".into());
            };
            record.resolved = Some(mask);
        }
    }

    // TAPE secondary structure.
    if let Some(ss8) = value.get("ss8") {
        let letters: Option<String> = match ss8.as_str() {
            Some(s) => Some(s.to_string()),
            None => ss8.to_i64_vec().map(|v| {
                v.iter()
                    .map(|i| {
                        usize::try_from(*i)
                            .ok()
                            .and_then(|i| TAPE_SS8.get(i))
                            .copied()
                            .unwrap_or('!')
                    })
                    .collect()
            }),
        };
        match letters {
            Some(l) => record.ss8 = Some(l),
            None => {
                return reject(
                    "malformed_record",
                    "`ss8` is neither a string nor a list of indices".into(),
                );
            }
        }
    }
    warnings.push(SourceItem::Record(record));
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::pickle::NdArray;

    /// Minimal protocol-3 pickle of a dict of str / int / list[int] values.
    enum Val<'a> {
        Str(&'a str),
        Ints(&'a [i32]),
    }

    fn pickle(entries: &[(&str, Val)]) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, s: &str) {
            out.push(b'X');
            out.extend((s.len() as u32).to_le_bytes());
            out.extend(s.as_bytes());
        }
        let mut out = vec![0x80, 3, b'}', b'('];
        for (k, v) in entries {
            text(&mut out, k);
            match v {
                Val::Str(s) => text(&mut out, s),
                Val::Ints(list) => {
                    out.extend([b']', b'(']);
                    for i in *list {
                        out.push(b'J');
                        out.extend(i.to_le_bytes());
                    }
                    out.push(b'e');
                }
            }
        }
        out.extend([b'u', b'.']);
        out
    }

    fn write_lmdb(dir: &Path, values: &[(&str, Vec<u8>)]) {
        let env = unsafe { EnvOpenOptions::new().map_size(1 << 20).max_dbs(1).open(dir) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        let db: Database<Bytes, Bytes> = env
            .create_databases_and_commit(wtxn, |wdo, wtxn| {
                wdo.create_database(wtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit();
        let mut wtxn = env.write_txn().unwrap();
        for (k, v) in values {
            db.put(&mut wtxn, k.as_bytes(), v).unwrap();
        }
        wtxn.commit().unwrap();
    }

    #[test]
    fn synthetic_provis_lmdb_in_numeric_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |id: &str, seq: &str, pos: &[i32], sites: &[i32]| {
            pickle(&[
                ("id", Val::Str(id)),
                ("primary", Val::Str(seq)),
                ("positions", Val::Ints(pos)),
                ("sites", Val::Ints(sites)),
            ])
        };
        let mut values: Vec<(String, Vec<u8>)> = (0..12)
            .map(|i| {
                (
                    i.to_string(),
                    rec(&format!("p{i}"), "MKTA", &[5, 6, 8, 9], &[6, 9, 42]),
                )
            })
            .collect();
        values.push(("num_examples".into(), vec![0x80, 3, b'K', 12, b'.']));
        values.push(("7".into(), b"not a pickle".to_vec()));
        let borrowed: Vec<(&str, Vec<u8>)> = values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        write_lmdb(dir.path(), &borrowed);

        let items: Vec<SourceItem> = open(dir.path()).unwrap().map(|i| i.unwrap()).collect();
        let ids: Vec<String> = items
            .iter()
            .filter_map(|i| {
                if let SourceItem::Record(r) = i {
                    Some(r.id.clone())
                } else {
                    None
                }
            })
            .collect();
        // Numeric order (LMDB's own order is 0, 1, 10, 11, 2, …); record 7 is corrupt.
        assert_eq!(
            ids,
            ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p8", "p9", "p10", "p11"]
        );
        let SourceItem::Record(r) = items.iter().find(|i| matches!(i, SourceItem::Record(_))).unwrap() else {
            unreachable!()
        };
        // Residue numbers 6 and 9 are at indices 1 and 3; 42 matches nothing.
        assert_eq!(r.binding_sites, Some(vec![1, 3]));
        assert!(items.iter().any(|i| matches!(i, SourceItem::Rejected(r) if r.kind == "malformed_record" && r.source.ends_with(":7"))));
        assert_eq!(
            items
                .iter()
                .filter(|i| matches!(i, SourceItem::Warning(w) if w.contains("[42]")))
                .count(),
            11
        );
    }

    #[test]
    fn truncated_data_file_is_refused_before_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<(String, Vec<u8>)> = (0..200)
            .map(|i| {
                (
                    i.to_string(),
                    pickle(&[("primary", Val::Str(&"MKTAYIAKQR".repeat(40)))]),
                )
            })
            .collect();
        let borrowed: Vec<(&str, Vec<u8>)> = values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        write_lmdb(dir.path(), &borrowed);
        let data = dir.path().join("data.mdb");
        check_data_file(&data).unwrap();
        let full = std::fs::metadata(&data).unwrap().len();
        assert!(
            full > 16 * 4096,
            "the test database spans many pages ({full} bytes)"
        );
        let bytes = std::fs::read(&data).unwrap();
        for cut in [full - 4096, full / 2, 3 * 4096, 4096 + 100, 100, 0] {
            std::fs::write(&data, &bytes[..cut as usize]).unwrap();
            let Err(e) = open(dir.path()) else {
                panic!("a data.mdb cut to {cut} bytes was opened");
            };
            let e = e.to_string();
            assert!(
                e.contains("data.mdb") && e.contains("truncated LMDB"),
                "{cut}: {e}"
            );
            assert!(e.contains(&format!("{cut} bytes")), "{e}");
        }
        let mut garbage = bytes.clone();
        garbage[16..20].copy_from_slice(&[0; 4]);
        std::fs::write(&data, &garbage).unwrap();
        let e = check_data_file(&data).unwrap_err().to_string();
        assert!(e.contains("not an LMDB data file"), "{e}");
    }

    fn dict(entries: Vec<(&str, PickleValue)>) -> PickleValue {
        PickleValue::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (PickleValue::Str(k.into()), v))
                .collect(),
        )
    }

    fn f32_array(shape: Vec<usize>, values: &[f32]) -> PickleValue {
        PickleValue::NdArray(NdArray {
            dtype: "<f4".into(),
            shape,
            fortran_order: false,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
    }

    #[test]
    fn tape_proteinnet_layout() {
        let value = dict(vec![
            ("id", PickleValue::Str("1abc_A".into())),
            ("primary", PickleValue::Str("MK".into())),
            ("tertiary", f32_array(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            (
                "valid_mask",
                PickleValue::List(vec![PickleValue::Bool(true), PickleValue::Bool(false)]),
            ),
        ]);
        let items = convert(&value, 0, "t:0");
        let SourceItem::Record(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.ca_coords, Some(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(r.resolved, Some(vec![true, false]));
        let bad = dict(vec![
            ("primary", PickleValue::Str("MKT".into())),
            ("tertiary", f32_array(vec![2, 3], &[0.0; 6])),
        ]);
        assert!(
            matches!(&convert(&bad, 1, "t:1")[0], SourceItem::Rejected(r) if r.kind == "length_mismatch")
        );
    }

    #[test]
    fn tape_secondary_structure_layout() {
        let ss8: Vec<PickleValue> = [1, 1, 4, 7, 6].iter().map(|i| PickleValue::Int(*i)).collect();
        let value = dict(vec![
            ("primary", PickleValue::Str("MKTAY".into())),
            ("ss8", PickleValue::List(ss8)),
        ]);
        let items = convert(&value, 3, "t:3");
        let SourceItem::Record(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.id, "3");
        assert_eq!(r.ss8.as_deref(), Some("HHE-T"));
    }
}
