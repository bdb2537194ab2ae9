//! `headscan ingest`: input formats → canonical Parquet shards + manifest.
//!
//! Every format is a [`RecordSource`]: a stream of records, rejections and
//! warnings. The driver ([`ingest`]) validates each record with the rules of
//! [`validate`], drops duplicate ids, fills shards of `shard_rows` rows and
//! writes each as soon as it is full under a temporary prefix, then moves the
//! shards into place and publishes `manifest.json` last.

pub mod annotations;
pub mod fasta;
pub mod lmdb;
pub mod parquet_input;
pub mod pickle;
pub mod proteinnet;
pub mod rcsb_ss;
pub mod ss_csv;
pub mod structures;
pub mod uniprot;
pub mod validate;
mod writer;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use headscan_proto::manifest::{IngestReport, MANIFEST_FILE, Manifest, Rejection};
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::{Location, StoreError};
use sha2::{Digest, Sha256};

pub use writer::{ShardWriter, encode_parquet};

/// Errors that stop an ingest (as opposed to rejected records, which do not).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input cannot be read at all.
    #[error("cannot read input {path}: {reason}")]
    Input {
        /// Input path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing the object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output already holds a dataset.
    #[error("{0} already holds a dataset (manifest.json); pass --overwrite to replace it")]
    OutputExists(String),
    /// Encoding a shard failed.
    #[error("writing shard: {0}")]
    Encode(String),
    /// Every record was rejected or the input was empty.
    #[error("no valid records in {input}: {summary}")]
    Empty {
        /// Input path.
        input: String,
        /// Counts of what was read.
        summary: String,
    },
    /// Invalid options.
    #[error("{0}")]
    Options(String),
}

impl IngestError {
    /// An unreadable input.
    pub fn input(path: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Self::Input {
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// What a format reader yields, one item at a time.
#[derive(Debug)]
pub enum SourceItem {
    /// A parsed record (still to be validated).
    Record(ProteinRecord),
    /// A record that could not be parsed.
    Rejected(Rejection),
    /// A non-fatal note.
    Warning(String),
}

/// A stream of items from one input; `Err` aborts the ingest (I/O failure).
pub type RecordSource = Box<dyn Iterator<Item = Result<SourceItem, IngestError>> + Send>;

/// Builds a [`Rejection`].
pub fn rejection(
    record: Option<&str>,
    source: impl Into<String>,
    kind: &str,
    reason: impl Into<String>,
) -> Rejection {
    Rejection {
        record: record.map(str::to_string),
        source: source.into(),
        kind: kind.to_string(),
        reason: reason.into(),
    }
}

/// Input formats of `headscan ingest --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FASTA, optionally with an annotation TSV.
    Fasta,
    /// ProteinNet text records.
    ProteinNet,
    /// TAPE / provis LMDB of pickled dicts.
    TapeLmdb,
    /// A directory (or one file) of PDB / mmCIF structures.
    Structures,
    /// NetSurfP-style secondary-structure CSV.
    SsCsv,
    /// RCSB `ss.txt`.
    RcsbSs,
    /// UniProtKB flat file.
    Uniprot,
    /// Canonical Parquet (a file, a directory of files, or a dataset).
    Parquet,
}

impl Format {
    /// Every format with its CLI name.
    pub const ALL: [(Format, &'static str); 8] = [
        (Format::Fasta, "fasta"),
        (Format::ProteinNet, "proteinnet"),
        (Format::TapeLmdb, "tape-lmdb"),
        (Format::Structures, "structures"),
        (Format::SsCsv, "ss-csv"),
        (Format::RcsbSs, "rcsb-ss"),
        (Format::Uniprot, "uniprot"),
        (Format::Parquet, "parquet"),
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown format `{s}` (expected one of: {})", names.join(", "))
            })
    }
}

/// Options of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Input format.
    pub format: Format,
    /// Input file or directory.
    pub input: PathBuf,
    /// Output dataset URL.
    pub out: String,
    /// Per-residue annotation TSV (FASTA only).
    pub annotations: Option<PathBuf>,
    /// Rows per shard.
    pub shard_rows: usize,
    /// Replace an existing dataset at `out`.
    pub overwrite: bool,
    /// UniProt feature-key mapping (`KEY=binding_site|ptm|site:<name>|ignore`) overriding the defaults.
    pub uniprot_map: Vec<String>,
    /// Show a progress bar (the CLI sets this on a terminal).
    pub progress: bool,
}

/// Default rows per shard.
pub const DEFAULT_SHARD_ROWS: usize = 4096;

impl IngestOptions {
    /// Options with defaults for everything but format, input and output.
    pub fn new(format: Format, input: PathBuf, out: String) -> Self {
        Self {
            format,
            input,
            out,
            annotations: None,
            shard_rows: DEFAULT_SHARD_ROWS,
            overwrite: false,
            uniprot_map: Vec::new(),
            progress: false,
        }
    }
}

/// Opens the reader of a format.
pub fn open_source(opts: &IngestOptions) -> Result<RecordSource, IngestError> {
    if opts.annotations.is_some() && opts.format != Format::Fasta {
        return Err(IngestError::Options(
            "--annotations is only read with --format fasta".into(),
        ));
    }
    let input = opts.input.as_path();
    match opts.format {
        Format::Fasta => {
            let records = fasta::open(input)?;
            match &opts.annotations {
                Some(tsv) => annotations::attach(records, tsv),
                None => Ok(records),
            }
        }
        Format::ProteinNet => proteinnet::open(input),
        Format::TapeLmdb => lmdb::open(input),
        Format::Structures => structures::open(input),
        Format::SsCsv => ss_csv::open(input),
        Format::RcsbSs => rcsb_ss::open(input),
        Format::Uniprot => uniprot::open(input, &uniprot::FeatureMap::with_overrides(&opts.uniprot_map)?),
        Format::Parquet => parquet_input::open(input),
    }
}

/// Progress display: a bar on a terminal, periodic tracing logs otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {human_pos} records ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_log: Instant::now(),
        }
    }

    fn tick(&mut self, report: &IngestReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(report.records_read);
            if report.records_rejected > 0 {
                bar.set_message(format!("{} rejected", report.records_rejected));
            }
        } else if self.last_log.elapsed().as_secs() >= 10 {
            self.last_log = Instant::now();
            let rate = report.records_read as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                read = report.records_read,
                rejected = report.records_rejected,
                "ingest progress: {rate:.0} records/s"
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs one ingest to completion and returns the published manifest.
///
/// Records are validated one by one: a bad record is rejected (listed in the
/// manifest's report) and never costs the good ones. Nothing is visible at
/// the output until the manifest is written; on failure no manifest exists.
pub async fn ingest(opts: IngestOptions) -> Result<Manifest, IngestError> {
    if opts.shard_rows == 0 {
        return Err(IngestError::Options("--shard-rows must be at least 1".into()));
    }
    let out = Location::parse(&opts.out)?;
    if out.exists(MANIFEST_FILE).await? {
        if !opts.overwrite {
            return Err(IngestError::OutputExists(out.url().to_string()));
        }
        out.delete(MANIFEST_FILE).await?;
    }
    let source = open_source(&opts)?;
    let handle = tokio::runtime::Handle::current();
    let staging = format!("_staging/{}", uuid::Uuid::new_v4());
    let writer = ShardWriter::new(out.clone(), staging.clone(), handle.clone());
    let run_opts = opts.clone();
    let result = tokio::task::spawn_blocking(move || drive(source, writer, &run_opts))
        .await
        .map_err(|e| IngestError::Encode(format!("ingest thread failed: {e}")))?;
    let (writer, mut report) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = out.delete_prefix(&staging).await;
            return Err(e);
        }
    };
    report.format = opts.format.name().to_string();
    report.inputs = vec![opts.input.display().to_string()];
    if let Some(tsv) = &opts.annotations {
        report.inputs.push(tsv.display().to_string());
    }
    if report.records_written == 0 {
        let _ = out.delete_prefix(&staging).await;
        // With no manifest to list them in, the first rejections go in the error.
        let mut summary = report.summary_line();
        for r in report.rejections.iter().take(3) {
            let id = r
                .record
                .as_deref()
                .map(|id| format!("record {id} "))
                .unwrap_or_default();
            summary.push_str(&format!("; {id}at {}: {}", r.source, r.reason));
        }
        return Err(IngestError::Empty {
            input: opts.input.display().to_string(),
            summary,
        });
    }
    match writer.publish(report).await {
        Ok(m) => Ok(m),
        Err(e) => {
            let _ = out.delete_prefix(&staging).await;
            Err(e)
        }
    }
}

fn drive(
    source: RecordSource,
    mut writer: ShardWriter,
    opts: &IngestOptions,
) -> Result<(ShardWriter, IngestReport), IngestError> {
    let mut report = IngestReport::default();
    let mut seen_ids: HashSet<[u8; 16]> = HashSet::new();
    let mut progress = Progress::new(opts.progress);
    for item in source {
        match item? {
            SourceItem::Warning(w) => {
                tracing::debug!("{w}");
                report.warn(w);
            }
            SourceItem::Rejected(r) => report.reject(r),
            SourceItem::Record(mut record) => match validate::validate(&mut record) {
                Err(r) => report.reject(r),
                Ok(()) => {
                    // Ids are remembered by a 128-bit hash: 16 bytes per record.
                    let digest = Sha256::digest(record.id.as_bytes());
                    let mut key = [0u8; 16];
                    key.copy_from_slice(&digest[..16]);
                    if !seen_ids.insert(key) {
                        report.reject(rejection(
                            Some(&record.id),
                            record.source.clone(),
                            "duplicate_id",
                            format!(
                                "id `{}` already seen earlier in the input; first occurrence kept",
                                record.id
                            ),
                        ));
                    } else {
                        report.records_read += 1;
                        report.records_written += 1;
                        writer.push(record, opts.shard_rows)?;
                    }
                }
            },
        }
        progress.tick(&report);
    }
    writer.flush()?;
    progress.finish();
    Ok((writer, report))
}

/// Reads a file, transparently gunzipping `.gz` files, as a buffered reader.
pub fn open_text(path: &std::path::Path) -> Result<Box<dyn std::io::BufRead + Send>, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::input(path.display(), e))?;
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    Ok(if gz {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(std::io::BufReader::with_capacity(1 << 16, file))
    })
}

/// The file name of a path, for `source` strings.
pub fn file_label(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
