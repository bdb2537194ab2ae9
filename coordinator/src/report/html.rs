//! `index.html`: title, the context notes (prominently), run facts, a summary
//! table per feature (background rate, top heads linking to their pages,
//! centre of gravity, BLOSUM62 r), the interactive explorer, then the static
//! figures of the chosen features as `<img>` of their SVG with links to the SVG
//! and PNG files. Only local resources (report.css, data.js, report.js), every
//! text escaped.

use std::fmt::Write as _;

use crate::stats::AnalysisResults;

use super::ReportContext;
use super::figures::{FeatureView, fixed, head_label, percent};
use super::svg::escape;

/// The figure kinds drawn per feature: file-name prefix and caption.
pub(crate) const FEATURE_FIGURES: [(&str, &str); 3] = [
    (
        "heatmap",
        "Attention proportion per head (%), with the maximum per layer",
    ),
    (
        "top_heads",
        "Top heads with 95% confidence intervals (Bonferroni) and the background rate",
    ),
    ("layers", "Mean proportion per layer and its centre of gravity"),
];
/// File stem of the amino-acid similarity figure.
pub(crate) const AA_FIGURE: &str = "aa_similarity";

/// One feature's section: its view and the stem of its figure files.
pub(crate) struct FeatureSection<'v, 'a> {
    /// The feature.
    pub view: &'v FeatureView<'a>,
    /// Safe file stem (e.g. `ss4-helix`).
    pub stem: String,
    /// Whether its static figures were written.
    pub figures: bool,
}

/// The report's title: the context's, or "headscan report".
pub(crate) fn title(context: &ReportContext) -> String {
    if context.title.trim().is_empty() {
        "headscan report".to_string()
    } else {
        context.title.clone()
    }
}

/// The name of a figure file, e.g. `heatmap_ss4-helix.svg`.
pub(crate) fn figure_file(kind: &str, stem: &str, ext: &str) -> String {
    if stem.is_empty() {
        format!("{kind}.{ext}")
    } else {
        format!("{kind}_{stem}.{ext}")
    }
}

/// Renders `index.html`; `with_aa` says whether the amino-acid figure was written.
pub(crate) fn index(
    results: &AnalysisResults,
    context: &ReportContext,
    sections: &[FeatureSection<'_, '_>],
    with_aa: bool,
    sequences: &[(&str, &str)],
) -> String {
    let title = title(context);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"report.css\">\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let notes: Vec<&String> = context.notes.iter().filter(|n| !n.trim().is_empty()).collect();
    if !notes.is_empty() {
        h.push_str("<div class=\"notes\"><strong>Notes</strong>\n<ul>\n");
        for n in notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></div>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} layers × {} heads · {} sequences · {} residues · threshold θ = {} · \
         heads with fewer than {} arcs excluded · {} features</p>",
        results.n_layers,
        results.n_heads,
        results.sequences,
        results.residues,
        escape(&fixed(context.threshold, 3)),
        context.min_arcs,
        sections.len()
    );

    h.push_str("<h2>Summary</h2>\n");
    if sections.is_empty() {
        h.push_str("<p>These results contain no features.</p>\n");
    } else {
        h.push_str(
            "<table>\n<thead><tr><th>Feature</th><th>Background rate</th><th>Heads included</th>\
             <th>Significant heads</th><th>Centre of gravity (0-based layer)</th><th>Top heads</th></tr></thead>\n<tbody>\n",
        );
        for (k, s) in sections.iter().enumerate() {
            let v = s.view;
            let mut top = String::new();
            for t in v.top_heads.iter().take(3) {
                let label = head_label(t.layer, t.head);
                let _ = write!(
                    top,
                    "{}<a href=\"head.html#{label}\">{label}</a> ({})",
                    if top.is_empty() { "" } else { ", " },
                    escape(&percent(t.proportion))
                );
            }
            if top.is_empty() {
                top.push('–');
            }
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#feature={k}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&v.name),
                escape(&percent(v.background_rate)),
                v.heads_included,
                v.heads_significant,
                escape(&fixed(v.center_of_gravity, 2)),
                top
            );
        }
        h.push_str("</tbody>\n</table>\n");
        h.push_str(
            "<p class=\"meta\">Heads are labelled layer-head, 1-based (e.g. 12-4), as in the paper.</p>\n",
        );
    }
    if with_aa {
        let _ = writeln!(
            h,
            "<p>Pearson r between amino-acid attention similarity and BLOSUM62: <strong>{}</strong> \
             (<a href=\"#{AA_FIGURE}\">figure</a>)</p>",
            escape(
                &results
                    .blosum62_pearson_r
                    .map(|r| fixed(r, 3))
                    .unwrap_or_else(|| "n/a".to_string())
            )
        );
    }

    h.push_str(super::explorer::EXPLORER);
    if !sequences.is_empty() {
        h.push_str(
            "<h2 id=\"sequences\">Sequences</h2>\n<p class=\"meta\">Attention of any head on these \
             proteins, as arcs and on the Cα trace:</p>\n<ul>\n",
        );
        for (id, stem) in sequences {
            let _ = writeln!(
                h,
                "<li><a href=\"sequences/{}.html\">{}</a></li>",
                escape(stem),
                escape(id)
            );
        }
        h.push_str("</ul>\n");
    }
    if sections.iter().any(|s| s.figures) {
        h.push_str(
            "<h2 id=\"figures\">Figures</h2>\n<p class=\"meta\">Static PNG and SVG figures for the \
             features with the most significant heads; any other feature's heatmap can be exported \
             as SVG from the explorer.</p>\n",
        );
    }
    for s in sections.iter().filter(|s| s.figures) {
        let _ = writeln!(
            h,
            "<h3 id=\"{}\">{}</h3>",
            escape(&section_id(&s.stem)),
            escape(&s.view.name)
        );
        for (kind, caption) in FEATURE_FIGURES {
            figure(
                &mut h,
                &figure_file(kind, &s.stem, "svg"),
                &figure_file(kind, &s.stem, "png"),
                &s.view.name,
                caption,
            );
        }
    }
    if with_aa {
        let _ = writeln!(
            h,
            "<h2 id=\"{AA_FIGURE}\">Amino-acid attention similarity vs BLOSUM62</h2>"
        );
        figure(
            &mut h,
            &figure_file(AA_FIGURE, "", "svg"),
            &figure_file(AA_FIGURE, "", "png"),
            "amino acids",
            "Pearson r of amino-acid attention proportions across heads (left) beside BLOSUM62 (right)",
        );
    }
    let _ = write!(
        h,
        "<footer>Generated by headscan {} — a reproduction of Vig et al., “BERTology Meets Biology” (ICLR 2021).</footer>\n\
         <script src=\"data.js\"></script>\n<script src=\"report.js\"></script>\n</body>\n</html>\n",
        escape(env!("CARGO_PKG_VERSION"))
    );
    h
}

/// The HTML id of a feature's section.
fn section_id(stem: &str) -> String {
    format!("feature-{stem}")
}

/// Appends one `<figure>`.
fn figure(h: &mut String, svg: &str, png: &str, feature: &str, caption: &str) {
    let _ = writeln!(
        h,
        "<figure><img src=\"{svg}\" alt=\"{}: {}\">\n<figcaption>{} · <a href=\"{svg}\">SVG</a> · <a href=\"{png}\">PNG</a></figcaption></figure>",
        escape(feature),
        escape(caption),
        escape(caption),
        svg = escape(svg),
        png = escape(png)
    );
}
