//! The HTML report of a job (DESIGN §4): `report/index.html` (overview and
//! an interactive explorer: per-feature heatmap with hover and keyboard
//! navigation, layer profile), `head.html` (one head across every feature),
//! `data.js` (the numbers), `report.js` and `report.css`, all local so the
//! report opens from `file://` with no network. Static PNG and SVG figures
//! for papers are written for the [`FIGURE_FEATURES`] most striking features
//! (any heatmap can also be exported as SVG from the page).
//!
//! Figures per feature: `heatmap_<stem>` (percent proportion per head, layers as rows
//! with layer 1 on top, excluded heads hatched, layer-max bars beside it, as
//! provis Figure 2/3), `top_heads_<stem>` (top heads with CI error bars and the
//! background rate) and `layers_<stem>` (mean proportion per layer with the
//! centre of gravity), each as `.svg` and `.png`; plus `aa_similarity` when
//! amino-acid similarity rows exist. `<stem>` is the feature name made safe
//! for file names (`ss4:helix` → `ss4-helix`). Each figure is drawn once into
//! a small vector scene and rendered to both formats (PNG through the `png`
//! crate, text in the bundled Liberation Sans via `ab_glyph`). Output is deterministic: the same results give the
//! same bytes.

use std::path::{Path, PathBuf};

use crate::stats::AnalysisResults;

pub use load::load_results;

/// Features that get static PNG + SVG figures (ranked by significant heads,
/// then by their top head's enrichment over the background rate).
pub const FIGURE_FEATURES: usize = 6;

mod explorer;
#[cfg(test)]
mod explorer_tests;
mod figures;
mod html;
mod load;
mod png;
pub mod probe_figure;
mod scene;
pub mod sequences;
mod svg;
#[cfg(test)]
mod tests;

/// What the report says about the run besides the numbers.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// Title line (model and dataset).
    pub title: String,
    /// Free-form notes shown at the top (e.g. "random model: background-level alignment expected").
    pub notes: Vec<String>,
    /// Attention threshold θ.
    pub threshold: f64,
    /// min_arcs used for exclusion.
    pub min_arcs: u64,
    /// Sequences with a page of their own (`sequences/<stem>.html`).
    pub sequences: Vec<sequences::SequenceView>,
}

/// Errors writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A results file could not be read or decoded.
    #[error("{file}: {reason}")]
    Input {
        /// File (URL).
        file: String,
        /// Problem, naming the field or column.
        reason: String,
    },
}

/// Writes `index.html` and its figures into `dir`; returns the files written.
pub fn write_report(
    results: &AnalysisResults,
    context: &ReportContext,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let views = figures::feature_views(results);
    let stems = unique_stems(views.iter().map(|v| v.name.as_str()));
    let chosen = figure_features(&views);
    let mut written = Vec::new();
    let mut sections = Vec::new();
    for ((view, stem), with_figures) in views.iter().zip(&stems).zip(&chosen) {
        if *with_figures {
            let scenes = [
                figures::heatmap(view, context),
                figures::top_heads(view),
                figures::layer_profile(view),
            ];
            for ((kind, _), scene) in html::FEATURE_FIGURES.iter().zip(&scenes) {
                write_figure(dir, kind, stem, scene, &mut written)?;
            }
        }
        sections.push(html::FeatureSection {
            view,
            stem: stem.clone(),
            figures: *with_figures,
        });
    }
    let aa = figures::aa_similarity(results);
    if let Some(scene) = &aa {
        write_figure(dir, html::AA_FIGURE, "", scene, &mut written)?;
    }
    let title = html::title(context);
    let seq_stems = unique_stems(context.sequences.iter().map(|s| s.id.as_str()));
    let view_refs: Vec<_> = views.iter().collect();
    let mut data = explorer::data_js(results, &title, &view_refs, &stems, &chosen);
    explorer::append_sequences(&mut data, &context.sequences, &seq_stems);
    write_file(&dir.join("data.js"), data.as_bytes(), &mut written)?;
    write_file(&dir.join("report.js"), explorer::SCRIPT.as_bytes(), &mut written)?;
    write_file(&dir.join("report.css"), explorer::STYLE.as_bytes(), &mut written)?;
    write_file(
        &dir.join("head.html"),
        explorer::head_page(&title).as_bytes(),
        &mut written,
    )?;
    if !context.sequences.is_empty() {
        // One copy of the WebGL library for every sequence page.
        write_file(&dir.join("ogl.min.js"), explorer::OGL.as_bytes(), &mut written)?;
        let sub = dir.join("sequences");
        std::fs::create_dir_all(&sub).map_err(|source| io_error(&sub, source))?;
        for (view, stem) in context.sequences.iter().zip(&seq_stems) {
            let js = sequences::data_js(view, results.n_layers, results.n_heads);
            write_file(&sub.join(format!("{stem}.js")), js.as_bytes(), &mut written)?;
            let page = sequences::page(view, stem, &title);
            write_file(&sub.join(format!("{stem}.html")), page.as_bytes(), &mut written)?;
        }
    }
    let seq_links: Vec<(&str, &str)> = context
        .sequences
        .iter()
        .zip(&seq_stems)
        .map(|(v, s)| (v.id.as_str(), s.as_str()))
        .collect();
    let index = html::index(results, context, &sections, aa.is_some(), &seq_links);
    write_file(&dir.join("index.html"), index.as_bytes(), &mut written)?;
    written.sort();
    Ok(written)
}

/// Which features get static figures: the [`FIGURE_FEATURES`] best by
/// significant heads, then top-head enrichment (proportion / background),
/// ties in feature order.
fn figure_features(views: &[figures::FeatureView<'_>]) -> Vec<bool> {
    let score = |v: &figures::FeatureView<'_>| {
        let top = v.top_heads.first().map(|t| t.proportion).unwrap_or(f64::NAN);
        let e = top / v.background_rate;
        (
            v.heads_significant,
            if e.is_finite() { e } else { f64::NEG_INFINITY },
        )
    };
    let mut order: Vec<usize> = (0..views.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, ea) = score(&views[a]);
        let (sb, eb) = score(&views[b]);
        sb.cmp(&sa).then(eb.total_cmp(&ea)).then(a.cmp(&b))
    });
    let mut chosen = vec![false; views.len()];
    for &i in order.iter().take(FIGURE_FEATURES) {
        chosen[i] = true;
    }
    chosen
}

/// Writes one figure as `<kind>_<stem>.svg` and `.png`.
fn write_figure(
    dir: &Path,
    kind: &str,
    stem: &str,
    scene: &scene::Scene,
    written: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let svg_path = dir.join(html::figure_file(kind, stem, "svg"));
    write_file(&svg_path, svg::render(scene).as_bytes(), written)?;
    let png_path = dir.join(html::figure_file(kind, stem, "png"));
    let bytes = png::render(scene).map_err(|source| io_error(&png_path, source))?;
    write_file(&png_path, &bytes, written)
}

/// Writes one file and records it.
fn write_file(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| io_error(path, source))?;
    written.push(path.to_path_buf());
    Ok(())
}

/// A [`ReportError::Io`] naming `path`.
fn io_error(path: &Path, source: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Longest stem taken from a feature name before a hash is appended.
const MAX_STEM: usize = 64;

/// The feature name made safe for file names: ASCII letters, digits, `_`, `-` and `.` are kept
/// (a leading `.` is not), `:` becomes `-`, anything else `_`; at most [`MAX_STEM`] characters.
fn safe_stem(feature: &str) -> String {
    let mut stem: String = feature
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => c,
            '.' => '.',
            ':' => '-',
            _ => '_',
        })
        .take(MAX_STEM)
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(0..1, "_");
    }
    if stem.is_empty() {
        "feature".to_string()
    } else {
        stem
    }
}

/// FNV-1a (32-bit) of a string: a stable disambiguator for colliding stems.
fn fnv1a(text: &str) -> u32 {
    text.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// Safe, distinct stems for the features in order: when a name maps to a stem already taken
/// (ignoring case, for case-insensitive file systems), it gets `-<fnv1a hex>` appended
/// (then `-2`, `-3`, … if still taken).
fn unique_stems<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for name in names {
        let base = safe_stem(name);
        let mut stem = base.clone();
        if taken.contains(&stem.to_ascii_lowercase()) {
            stem = format!("{base}-{:08x}", fnv1a(name));
            let mut k = 2u32;
            while taken.contains(&stem.to_ascii_lowercase()) {
                stem = format!("{base}-{:08x}-{k}", fnv1a(name));
                k += 1;
            }
        }
        taken.push(stem.to_ascii_lowercase());
        out.push(stem);
    }
    out
}
