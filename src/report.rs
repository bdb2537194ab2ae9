//! `headscan report`: rebuild a finished job's report from its tables.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use headscan_coordinator::report::{load_results, write_report};

/// Flags of `headscan report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The job's output URL (a path, file://, s3://, gs://, az://) holding
    /// summary.json, heads.parquet, layers.parquet and aa_similarity.parquet.
    #[arg(long)]
    results: String,
    /// Local directory to write the report into (index.html and its files).
    #[arg(long)]
    out: PathBuf,
}

/// Reads the tables and writes the report; prints the path of index.html.
pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let (results, context) = load_results(&args.results)
        .await
        .with_context(|| format!("cannot read the results at {}", args.results))?;
    let out = args.out.clone();
    let files = tokio::task::spawn_blocking(move || write_report(&results, &context, &out))
        .await?
        .with_context(|| format!("cannot write the report into {}", args.out.display()))?;
    tracing::info!(files = files.len(), out = %args.out.display(), "report written");
    writeln!(
        std::io::stdout().lock(),
        "{}",
        args.out.join("index.html").display()
    )?;
    Ok(())
}
