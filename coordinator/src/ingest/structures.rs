//! PDB / mmCIF structures (optionally `.gz`), read with the `pdbtbx` parser:
//! one record per protein chain of the first model.
//!
//! The sequence is the chain's amino-acid residues in file order (standard
//! residues, common modified residues mapped to their parent, e.g. MSE → M;
//! unknown polymer residues → X; ligands, water and nucleotides are skipped).
//! A residue is resolved when it has a Cα atom (first alternate location).
//! The id is `<file stem, lower case>.<chain>`, as provis names PDB chains.

use std::io::Read;
use std::path::{Path, PathBuf};

use headscan_proto::record::ProteinRecord;
use rayon::prelude::*;

use super::{IngestError, RecordSource, SourceItem, file_label, rejection};

/// One-letter code of a residue name: standard residues, then common modified
/// residues by their parent amino acid.
pub fn one_letter(name: &str) -> Option<char> {
    Some(match name {
        "ALA" => 'A',
        "ARG" => 'R',
        "ASN" => 'N',
        "ASP" => 'D',
        "CYS" => 'C',
        "GLN" => 'Q',
        "GLU" => 'E',
        "GLY" => 'G',
        "HIS" => 'H',
        "ILE" => 'I',
        "LEU" => 'L',
        "LYS" => 'K',
        "MET" => 'M',
        "PHE" => 'F',
        "PRO" => 'P',
        "SER" => 'S',
        "THR" => 'T',
        "TRP" => 'W',
        "TYR" => 'Y',
        "VAL" => 'V',
        "SEC" => 'U',
        "PYL" => 'O',
        "ASX" => 'B',
        "GLX" => 'Z',
        "UNK" => 'X',
        // Modified residues → parent.
        "MSE" | "FME" => 'M',
        "SEP" | "SAC" => 'S',
        "TPO" => 'T',
        "PTR" | "TYS" => 'Y',
        "CSO" | "CSD" | "CME" | "OCS" | "CSS" | "CSX" | "SMC" | "CAS" => 'C',
        "HYP" => 'P',
        "KCX" | "MLY" | "M3L" | "LLP" | "ALY" | "MLZ" => 'K',
        "PCA" => 'Q',
        "CGU" => 'E',
        "HIC" | "NEP" => 'H',
        "MLE" | "NLE" => 'L',
        "ABA" | "AIB" => 'A',
        "DAL" => 'A',
        "DAR" => 'R',
        "DSG" => 'N',
        "DAS" => 'D',
        "DCY" => 'C',
        "DGN" => 'Q',
        "DGL" => 'E',
        "DHI" => 'H',
        "DIL" => 'I',
        "DLE" => 'L',
        "DLY" => 'K',
        "MED" => 'M',
        "DPN" => 'F',
        "DPR" => 'P',
        "DSN" => 'S',
        "DTH" => 'T',
        "DTR" => 'W',
        "DTY" => 'Y',
        "DVA" => 'V',
        _ => return None,
    })
}

fn is_standard(name: &str) -> bool {
    matches!(
        name,
        "ALA"
            | "ARG"
            | "ASN"
            | "ASP"
            | "CYS"
            | "GLN"
            | "GLU"
            | "GLY"
            | "HIS"
            | "ILE"
            | "LEU"
            | "LYS"
            | "MET"
            | "PHE"
            | "PRO"
            | "SER"
            | "THR"
            | "TRP"
            | "TYR"
            | "VAL"
    )
}

/// Residue names of nucleotides, never part of a protein sequence.
fn is_nucleotide(name: &str) -> bool {
    matches!(
        name,
        "A" | "C" | "G" | "U" | "I" | "T" | "DA" | "DC" | "DG" | "DT" | "DU" | "DI" | "N"
    )
}

/// The structure files under a path, sorted by name.
pub fn list_files(input: &Path) -> Result<Vec<PathBuf>, IngestError> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let dir = std::fs::read_dir(input).map_err(|e| IngestError::input(input.display(), e))?;
    let mut files = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| IngestError::input(input.display(), e))?;
        let path = entry.path();
        if path.is_file() && structure_format(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(IngestError::input(
            input.display(),
            "no .pdb/.ent/.cif/.mmcif files (optionally .gz) found",
        ));
    }
    Ok(files)
}

/// PDB or mmCIF by extension (after an optional `.gz`), with the compression flag.
fn structure_format(path: &Path) -> Option<(pdbtbx::Format, bool)> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let (base, gz) = match name.strip_suffix(".gz") {
        Some(b) => (b.to_string(), true),
        None => (name, false),
    };
    let ext = base.rsplit('.').next()?;
    match ext {
        "pdb" | "ent" | "pdb1" => Some((pdbtbx::Format::Pdb, gz)),
        "cif" | "mmcif" => Some((pdbtbx::Format::Mmcif, gz)),
        _ => None,
    }
}

/// Opens a directory of structures (or one structure file).
pub fn open(input: &Path) -> Result<RecordSource, IngestError> {
    let files = list_files(input)?;
    // Parse a few files at a time in parallel; items keep file order.
    let batches: Vec<Vec<PathBuf>> = files.chunks(8).map(|c| c.to_vec()).collect();
    Ok(Box::new(batches.into_iter().flat_map(|batch| {
        let parsed: Vec<Vec<SourceItem>> = batch.par_iter().map(|p| read_file(p)).collect();
        parsed.into_iter().flatten().map(Ok)
    })))
}

fn read_structure(path: &Path) -> Result<pdbtbx::PDB, String> {
    let (format, gz) = structure_format(path).ok_or("unknown structure extension")?;
    let mut options = pdbtbx::ReadOptions::new();
    options
        .set_format(format)
        .set_level(pdbtbx::StrictnessLevel::Loose)
        .set_only_first_model(true)
        .set_discard_hydrogens(true);
    let mut text = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if gz {
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut text)
            .map_err(|e| format!("gzip: {e}"))?;
    } else {
        std::io::BufReader::new(file)
            .read_to_end(&mut text)
            .map_err(|e| e.to_string())?;
    }
    if matches!(format, pdbtbx::Format::Pdb) {
        text = coordinate_section(&text);
    }
    // pdbtbx may panic on some malformed input; contain it to this file.
    let result = std::panic::catch_unwind(|| options.read_raw(std::io::BufReader::new(text.as_slice())))
        .map_err(|_| "the structure parser failed on this file".to_string())?;
    match result {
        Ok((pdb, _warnings)) => Ok(pdb),
        Err(errors) => Err(errors
            .iter()
            .take(3)
            .map(|e| e.short_description().to_string())
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// The records of a PDB file that hold the model: only these go to the
/// parser, so crystallographic and annotation records it cannot handle (space
/// groups it does not know, ANISOU without atoms) never cost a chain.
fn coordinate_section(text: &[u8]) -> Vec<u8> {
    const KEEP: [&[u8]; 7] = [
        b"HEADER", b"ATOM  ", b"HETATM", b"MODEL ", b"ENDMDL", b"TER", b"END",
    ];
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|b| *b == b'\n') {
        if KEEP.iter().any(|k| line.starts_with(k)) && !line.starts_with(b"ENDROOT") {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Reads one file into records (one per protein chain) or a rejection.
pub fn read_file(path: &Path) -> Vec<SourceItem> {
    let label = file_label(path);
    let stem = label.split('.').next().unwrap_or(&label).to_ascii_lowercase();
    let pdb = match read_structure(path) {
        Ok(p) => p,
        Err(why) => {
            return vec![SourceItem::Rejected(rejection(
                None,
                label.clone(),
                "malformed_record",
                format!("structure file {label} cannot be parsed: {why}"),
            ))];
        }
    };
    let Some(model) = pdb.models().next() else {
        return vec![SourceItem::Rejected(rejection(
            None,
            label.clone(),
            "malformed_record",
            format!("structure file {label} has no model"),
        ))];
    };
    let mut items = Vec::new();
    for chain in model.chains() {
        let mut sequence = String::new();
        let mut ca = Vec::new();
        let mut resolved = Vec::new();
        for residue in chain.residues() {
            let Some(conformer) = residue.conformers().next() else {
                continue;
            };
            let name = conformer.name().trim().to_ascii_uppercase();
            let hetero = conformer.atoms().all(|a| a.hetero());
            let letter = match one_letter(&name) {
                // Standard residues are ATOM records in a polymer; as HETATM
                // they are free amino-acid ligands.
                Some(_) if hetero && is_standard(&name) => continue,
                Some(c) => c,
                None if hetero || is_nucleotide(&name) || name == "HOH" => continue,
                // An unknown polymer residue with a backbone is an unknown amino acid.
                None if conformer.atoms().any(|a| a.name() == "CA") => 'X',
                None => continue,
            };
            sequence.push(letter);
            match conformer.atoms().find(|a| a.name().trim() == "CA") {
                Some(atom) => {
                    let (x, y, z) = atom.pos();
                    ca.extend([x as f32, y as f32, z as f32]);
                    resolved.push(true);
                }
                None => {
                    ca.extend([f32::NAN; 3]);
                    resolved.push(false);
                }
            }
        }
        if sequence.is_empty() {
            continue; // not a protein chain
        }
        let chain_id = chain.id();
        let mut record = ProteinRecord::new(
            format!("{stem}.{chain_id}"),
            sequence,
            format!("{label}:{chain_id}"),
        );
        record.ca_coords = Some(ca);
        record.resolved = Some(resolved);
        items.push(SourceItem::Record(record));
    }
    if items.is_empty() {
        items.push(SourceItem::Warning(format!(
            "{label}: no protein chain in the first model"
        )));
    }
    items
}
