//! `index.html`: title, the context notes (prominently), run facts, a summary
//! table per feature, then every figure as an `<img>` of its SVG with links to
//! the SVG and PNG files. Self-contained: inline CSS, no scripts, no external
//! resources, every text escaped.

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

/// Inline style sheet.
const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
.notes{background:#fff4ce;border:2px solid #e6a700;border-radius:6px;padding:.6em 1.2em;margin:1em 0;font-size:1.05em}\
.notes ul{margin:.3em 0;padding-left:1.2em}.meta{color:#555}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em;margin-top:.3em}footer{margin-top:3em;color:#888;font-size:.85em}";

/// One feature's section: its view and the stem of its figure files.
pub(crate) struct FeatureSection<'v, 'a> {
    /// The feature.
    pub view: &'v FeatureView<'a>,
    /// Safe file stem (e.g. `ss4-helix`).
    pub stem: String,
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
) -> String {
    let title = if context.title.trim().is_empty() {
        "headscan report".to_string()
    } else {
        context.title.clone()
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
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
             <th>Significant heads</th><th>Centre of gravity (0-based layer)</th><th>Top head</th></tr></thead>\n<tbody>\n",
        );
        for s in sections {
            let v = s.view;
            let top = v
                .top_heads
                .first()
                .map(|t| format!("{} ({})", head_label(t.layer, t.head), percent(t.proportion)))
                .unwrap_or_else(|| "–".to_string());
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&section_id(&s.stem)),
                escape(&v.name),
                escape(&percent(v.background_rate)),
                v.heads_included,
                v.heads_significant,
                escape(&fixed(v.center_of_gravity, 2)),
                escape(&top)
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

    for s in sections {
        let _ = writeln!(
            h,
            "<h2 id=\"{}\">{}</h2>",
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
         </body>\n</html>\n",
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
