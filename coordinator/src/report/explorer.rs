//! The interactive part of the report: `data.js` (every head's numbers per
//! feature, as compact column arrays), the script and style sheet that draw
//! the heatmaps, layer profiles and head pages in the browser, and
//! `head.html`. Everything is local: the page works from `file://` with no
//! server and no network.

use std::fmt::Write as _;

use crate::stats::AnalysisResults;

use super::figures::FeatureView;

/// The browser script (hand-written, no dependencies).
pub(crate) const SCRIPT: &str = include_str!("assets/report.js");
/// The style sheet shared by every page.
pub(crate) const STYLE: &str = include_str!("assets/report.css");
/// OGL (a small WebGL library, Unlicense), bundled from npm by
/// `scripts/vendor-report-assets.sh`: the 3D view of the sequence pages.
pub(crate) const OGL: &str = include_str!("assets/ogl.min.js");

/// A number for `data.js`: 6 significant digits (enough for every number the
/// pages show), `null` when not finite.
fn num(v: f64) -> String {
    sig(v, 6)
}

/// A number with `digits` significant digits, trailing zeros trimmed, `null` when not finite.
fn sig(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return "null".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor();
    if (-4.0..6.0).contains(&magnitude) {
        // Plain decimals are shorter in this range: 0.123457, not 1.23457e-1.
        let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            &s
        };
        return s.to_string();
    }
    let s = format!("{v:.*e}", digits.saturating_sub(1));
    // Trim trailing zeros of the mantissa: 1.50000e-1 → 1.5e-1.
    match s.split_once('e') {
        Some((m, e)) => {
            let m = if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.')
            } else {
                m
            };
            if e == "0" {
                m.to_string()
            } else {
                format!("{m}e{e}")
            }
        }
        None => s,
    }
}

/// A JSON string literal.
fn string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Appends `"key":[v,…]` over the grid cells, `null` where a head has no row.
fn grid<T>(out: &mut String, key: &str, cells: &[Option<T>], f: impl Fn(&T) -> String) {
    let _ = write!(out, "\"{key}\":[");
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&c.as_ref().map(&f).unwrap_or_else(|| "null".into()));
    }
    out.push_str("],");
}

/// `data.js`: `window.HEADSCAN = {…}` with the run facts and, per feature,
/// its summary and one array per statistic indexed by `layer * n_heads + head`
/// (0-based), every number to 6 significant digits (the pages show at most
/// 4, so rounding twice cannot change a shown digit but in rare ties). `figures` lists the features whose static PNG/SVG files exist.
pub(crate) fn data_js(
    results: &AnalysisResults,
    title: &str,
    views: &[&FeatureView<'_>],
    stems: &[String],
    figures: &[bool],
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "window.HEADSCAN={{\"title\":{},\"n_layers\":{},\"n_heads\":{},\"sequences\":{},\"residues\":{},\"features\":[",
        string(title),
        results.n_layers,
        results.n_heads,
        results.sequences,
        results.residues
    );
    for (k, view) in views.iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        let cells_n = view.n_layers as usize * view.n_heads as usize;
        let mut cells = vec![None; cells_n];
        for h in &view.heads {
            if h.layer < view.n_layers && h.head < view.n_heads {
                cells[(h.layer * view.n_heads + h.head) as usize] = Some(*h);
            }
        }
        let _ = write!(
            o,
            "{{\"name\":{},\"stem\":{},\"figures\":{},\"background\":{},\"cog\":{},\"included\":{},\"significant\":{},",
            string(&view.name),
            string(&stems[k]),
            figures[k],
            num(view.background_rate),
            num(view.center_of_gravity),
            view.heads_included,
            view.heads_significant
        );
        o.push_str("\"layer_mean\":[");
        o.push_str(
            &view
                .layer_mean
                .iter()
                .map(|v| num(*v))
                .collect::<Vec<_>>()
                .join(","),
        );
        o.push_str("],");
        grid(&mut o, "p", &cells, |h| num(h.proportion));
        grid(&mut o, "arcs", &cells, |h| h.arcs.to_string());
        grid(&mut o, "hits", &cells, |h| h.hits.to_string());
        grid(&mut o, "lo", &cells, |h| num(h.ci_low));
        grid(&mut o, "hi", &cells, |h| num(h.ci_high));
        grid(&mut o, "pv", &cells, |h| num(h.p_value));
        grid(&mut o, "np", &cells, |h| num(h.null_p_value));
        grid(&mut o, "wz", &cells, |h| num(h.null_weighted_z));
        grid(&mut o, "en", &cells, |h| num(h.enrichment));
        grid(&mut o, "wp", &cells, |h| num(h.weighted_proportion));
        grid(&mut o, "ex", &cells, |h| u8::from(h.excluded).to_string());
        grid(&mut o, "sig", &cells, |h| u8::from(h.significant).to_string());
        o.pop();
        o.push('}');
    }
    o.push_str("]};\n");
    o
}

/// Appends `window.HEADSCAN.visualised = [{id, stem, peak}]` to `data.js`: the
/// visualised sequences and, per head ("L-H", 1-based), its largest attention
/// weight in each, so head pages can list where a head attends most.
pub(crate) fn append_sequences(out: &mut String, views: &[super::sequences::SequenceView], stems: &[String]) {
    if views.is_empty() {
        return;
    }
    out.push_str("window.HEADSCAN.visualised=[");
    for (k, (v, stem)) in views.iter().zip(stems).enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":{},\"stem\":{},\"peak\":{{",
            string(&v.id),
            string(stem)
        );
        let mut first = true;
        for (l, h, arcs) in &v.heads {
            let peak = arcs.iter().map(|a| a.2).fold(f32::NAN, f32::max);
            if !peak.is_finite() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "\"{}-{}\":{}", l + 1, h + 1, num(f64::from(peak)));
        }
        out.push_str("}}");
    }
    out.push_str("];\n");
}

/// `head.html`: one head (chosen by the URL fragment, e.g. `#12-4`) across every feature.
pub(crate) fn head_page(title: &str) -> String {
    let title = super::svg::escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Head · {title}</title>\n<link rel=\"stylesheet\" href=\"report.css\">\n</head>\n<body>\n\
         <nav><a href=\"index.html\">← Overview</a></nav>\n\
         <h1 id=\"head-title\">Head</h1>\n<p class=\"meta\">{title}</p>\n\
         <p><label for=\"head-pick\">Head (layer-head, 1-based): </label>\
         <select id=\"head-pick\"></select></p>\n\
         <p class=\"meta\">Each row is one feature: the bar is this head's proportion of attention \
         (θ-thresholded arcs) landing on the feature, the tick the background rate. \
         ★ marks a significant head (Bonferroni); excluded heads (too few arcs) are greyed.</p>\n\
         <div id=\"head-profile\" role=\"region\" aria-label=\"This head across features\"></div>\n\
         <div id=\"head-sequences\"></div>\n\
         <script src=\"data.js\"></script>\n<script src=\"report.js\"></script>\n\
         </body>\n</html>\n"
    )
}

/// The explorer section of `index.html`: feature picker, heatmap, details and layer profile.
pub(crate) const EXPLORER: &str = "<h2 id=\"explorer\">Explore heads</h2>\n\
<p><label for=\"feature-pick\">Feature: </label><select id=\"feature-pick\"></select> \
<button type=\"button\" id=\"export-svg\">Download heatmap SVG</button> \
<span id=\"figure-links\"></span></p>\n\
<p class=\"meta\">Hover or move with the arrow keys over the heatmap to see a head's numbers; \
click or press Enter to open the head across all features. Colour: proportion of attention on the \
feature (viridis, colour-blind safe); hatched: excluded (too few arcs); ★ significant.</p>\n\
<div class=\"explorer\"><div id=\"heatmap\"></div>\
<div id=\"details\" aria-live=\"polite\"><p class=\"meta\">Hover a cell.</p></div></div>\n\
<h3>Layer profile</h3>\n<div id=\"profile\"></div>\n";
