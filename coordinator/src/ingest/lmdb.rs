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

fn open_env(path: &Path) -> Result<Env, IngestError> {
    let (dir_flags, target) = if path.is_file() {
        (
            EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_SUB_DIR,
            path,
        )
    } else if path.join("data.mdb").is_file() {
        (EnvFlags::READ_ONLY | EnvFlags::NO_LOCK, path)
    } else {
        return Err(IngestError::input(
            path.display(),
            "not an LMDB directory (no data.mdb) or file",
        ));
    };
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
