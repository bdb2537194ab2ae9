//! The report's figures as [`Scene`]s: the per-head heatmap with the
//! layer-max bars (provis Figure 2/3 style), the top-head bars with their
//! confidence intervals, the layer profile with its centre of gravity, and
//! amino-acid attention similarity beside BLOSUM62.
//!
//! Every figure tolerates missing data: NaN proportions, heads outside the
//! declared grid, features without a summary, no heads at all.

use crate::stats::{AnalysisResults, HeadRow, LayerRow, TopHead};

use super::ReportContext;
use super::scene::{
    AXIS, Anchor, BACKGROUND, BAR, Fill, GRID, HIGHLIGHT, INK, NO_DATA, PANEL, Scene, text_width,
};
use super::scene::{blues, diverging};

/// Most layers or heads drawn in a grid; rows beyond it (or beyond the declared grid) are left out, and said so.
pub(crate) const MAX_GRID: u32 = 256;
/// Heads listed when a feature has no summary and its top heads are derived.
const DERIVED_TOP_K: usize = 10;
/// Title font size.
const TITLE: f64 = 15.0;
/// Subtitle font size.
const SUB: f64 = 11.0;
/// Label font size.
const LABEL: f64 = 11.0;
/// Tick font size.
const TICK: f64 = 10.0;
/// The 20 standard amino acids in the order of the AA figure.
const AMINO_ACIDS: &str = "ACDEFGHIKLMNPQRSTVWY";

/// Everything the report knows about one feature, with fallbacks where the summary is missing.
#[derive(Debug, Clone)]
pub(crate) struct FeatureView<'a> {
    /// Feature name.
    pub name: String,
    /// Its head rows in input order.
    pub heads: Vec<&'a HeadRow>,
    /// Rows of the grid (layers shown).
    pub n_layers: u32,
    /// Columns of the grid (heads per layer shown).
    pub n_heads: u32,
    /// Head rows that fell outside the grid.
    pub heads_outside: usize,
    /// Mean proportion per layer (NaN where unknown).
    pub layer_mean: Vec<f64>,
    /// Max proportion per layer (NaN where unknown).
    pub layer_max: Vec<f64>,
    /// Background rate (NaN when unknown).
    pub background_rate: f64,
    /// Heads with arcs ≥ min_arcs.
    pub heads_included: u64,
    /// Significant heads.
    pub heads_significant: u64,
    /// Centre of gravity over layer means (0-based; NaN when undefined).
    pub center_of_gravity: f64,
    /// Top heads: the summary's, or the best included heads by proportion.
    pub top_heads: Vec<TopHead>,
}

/// The features of `results` in a stable order (summaries first, then any feature
/// that only appears in head or layer rows), each with its derived view.
pub(crate) fn feature_views(results: &AnalysisResults) -> Vec<FeatureView<'_>> {
    let mut names: Vec<&str> = Vec::new();
    let all = results
        .features
        .iter()
        .map(|f| f.feature.as_str())
        .chain(results.heads.iter().map(|h| h.feature.as_str()))
        .chain(results.layers.iter().map(|l| l.feature.as_str()));
    for name in all {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.into_iter().map(|name| view(results, name)).collect()
}

/// Builds the view of one feature.
fn view<'a>(results: &'a AnalysisResults, name: &str) -> FeatureView<'a> {
    let summary = results.features.iter().find(|f| f.feature == name);
    let heads: Vec<&HeadRow> = results.heads.iter().filter(|h| h.feature == name).collect();
    let layers: Vec<&LayerRow> = results.layers.iter().filter(|l| l.feature == name).collect();
    let seen_layers = heads
        .iter()
        .map(|h| h.layer)
        .chain(layers.iter().map(|l| l.layer))
        .max()
        .map(|l| l.saturating_add(1));
    let seen_heads = heads.iter().map(|h| h.head).max().map(|h| h.saturating_add(1));
    // The declared grid wins; without one, the rows seen define it.
    let dim = |declared: u32, seen: Option<u32>| {
        if declared > 0 { declared } else { seen.unwrap_or(0) }.min(MAX_GRID)
    };
    let n_layers = dim(results.n_layers, seen_layers);
    let n_heads = dim(results.n_heads, seen_heads);
    let heads_outside = heads
        .iter()
        .filter(|h| h.layer >= n_layers || h.head >= n_heads)
        .count();

    let mut layer_mean = vec![f64::NAN; n_layers as usize];
    let mut layer_max = vec![f64::NAN; n_layers as usize];
    for l in 0..n_layers {
        let included: Vec<f64> = heads
            .iter()
            .filter(|h| h.layer == l && !h.excluded && h.proportion.is_finite())
            .map(|h| h.proportion)
            .collect();
        let (mean, max) = match layers.iter().find(|r| r.layer == l) {
            Some(r) => (r.mean_proportion, r.max_proportion),
            None if included.is_empty() => (f64::NAN, f64::NAN),
            None => (
                included.iter().sum::<f64>() / included.len() as f64,
                included.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
        };
        layer_mean[l as usize] = mean;
        layer_max[l as usize] = max;
    }

    let background_rate = summary
        .map(|s| s.background_rate)
        .or_else(|| heads.first().map(|h| h.background_rate))
        .unwrap_or(f64::NAN);
    let heads_included = summary
        .map(|s| s.heads_included as u64)
        .unwrap_or_else(|| heads.iter().filter(|h| !h.excluded).count() as u64);
    let heads_significant = summary
        .map(|s| s.heads_significant as u64)
        .unwrap_or_else(|| heads.iter().filter(|h| h.significant).count() as u64);
    let center_of_gravity = summary
        .map(|s| s.center_of_gravity)
        .unwrap_or_else(|| center_of_gravity(&layer_mean));
    let top_heads = match summary {
        Some(s) => s.top_heads.clone(),
        None => {
            let mut best: Vec<&HeadRow> = heads
                .iter()
                .copied()
                .filter(|h| !h.excluded && h.proportion.is_finite())
                .collect();
            best.sort_by(|a, b| {
                b.proportion
                    .total_cmp(&a.proportion)
                    .then((a.layer, a.head).cmp(&(b.layer, b.head)))
            });
            best.iter()
                .take(DERIVED_TOP_K)
                .map(|h| TopHead {
                    layer: h.layer,
                    head: h.head,
                    proportion: h.proportion,
                    ci_low: h.ci_low,
                    ci_high: h.ci_high,
                })
                .collect()
        }
    };
    FeatureView {
        name: name.to_string(),
        heads,
        n_layers,
        n_heads,
        heads_outside,
        layer_mean,
        layer_max,
        background_rate,
        heads_included,
        heads_significant,
        center_of_gravity,
        top_heads,
    }
}

/// Σ l·w_l / Σ w_l over finite layer means (0-based); NaN when the weights sum to zero.
pub(crate) fn center_of_gravity(means: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (l, w) in means.iter().enumerate() {
        if w.is_finite() {
            num += l as f64 * w;
            den += w;
        }
    }
    if den > 0.0 { num / den } else { f64::NAN }
}

/// "layer-head", 1-based, as the paper labels heads.
pub(crate) fn head_label(layer: u32, head: u32) -> String {
    format!("{}-{}", layer as u64 + 1, head as u64 + 1)
}

/// A proportion as a percent with one decimal, or "n/a".
pub(crate) fn percent(p: f64) -> String {
    if p.is_finite() {
        format!("{:.1}%", p * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// A number with `decimals` decimals, or "n/a".
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_string()
    }
}

/// A round axis maximum ≥ `max` and its tick step (about five ticks); `(1, 0.2)` when `max` is not positive.
pub(crate) fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let top = ((max / step) - 1e-9).ceil().max(1.0) * step;
    (top, step)
}

/// A tick label for value `v` on an axis with step `step` (as many decimals as the step needs, at most 6).
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..=6usize)
        .find(|d| {
            let scaled = step * 10f64.powi(*d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6);
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// The ticks 0, step, …, top.
fn ticks(top: f64, step: f64) -> Vec<f64> {
    let n = (top / step).round().clamp(1.0, 50.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// Draws the title and subtitle lines; returns the width they need.
fn header(scene: &mut Scene, x: f64, title: &str, subtitles: &[String]) -> f64 {
    scene.text_styled(x, 22.0, title, TITLE, Anchor::Start, INK, true, false);
    let mut need = x + text_width(title, TITLE) * 1.05 + 20.0;
    for (i, sub) in subtitles.iter().enumerate() {
        scene.text_styled(
            x,
            40.0 + 15.0 * i as f64,
            sub,
            SUB,
            Anchor::Start,
            AXIS,
            false,
            false,
        );
        need = need.max(x + text_width(sub, SUB) + 20.0);
    }
    need
}

/// A message in place of a plot.
fn empty_figure(title: &str, message: &str) -> Scene {
    let mut scene = Scene::new(title);
    let need = header(&mut scene, 20.0, title, &[]);
    scene.rect(20.0, 40.0, 360.0, 80.0, Fill::Solid(PANEL), Some(GRID), None);
    scene.text(200.0, 84.0, message, LABEL, Anchor::Middle);
    scene.width = need.max(400.0);
    scene.height = 140.0;
    scene
}

/// The percent colour-scale maximum of a feature (a round number ≥ every included proportion).
fn colour_top(view: &FeatureView<'_>) -> (f64, f64) {
    let max = view
        .heads
        .iter()
        .filter(|h| !h.excluded && h.proportion.is_finite())
        .map(|h| h.proportion * 100.0)
        .fold(f64::NAN, f64::max);
    nice_axis(max)
}

/// Figure 1: percent proportion per head (layers as rows, layer 1 on top) with the layer-max bars and a legend.
pub(crate) fn heatmap(view: &FeatureView<'_>, context: &ReportContext) -> Scene {
    let title = format!("{}: attention proportion per head (%)", view.name);
    if view.n_layers == 0 || view.n_heads == 0 {
        return empty_figure(&title, "no heads to show");
    }
    let (nl, nh) = (view.n_layers as f64, view.n_heads as f64);
    let cw = (560.0 / nh).clamp(6.0, 36.0);
    let ch = (460.0 / nl).clamp(4.0, 24.0);
    let (x0, y0) = (70.0, 80.0);
    let (gw, gh) = (nh * cw, nl * ch);
    let mut scene = Scene::new(&title);
    let mut subtitles = vec![format!(
        "% of high-confidence arcs (α ≥ {}) whose {} holds; background {}",
        fixed(context.threshold, 2),
        view.name,
        percent(view.background_rate)
    )];
    if view.heads_outside > 0 {
        subtitles.push(format!(
            "{} head rows outside the {}×{} grid are not drawn",
            view.heads_outside, nl, nh
        ));
    }
    let mut need = header(&mut scene, 20.0, &title, &subtitles);
    let (ctop, cstep) = colour_top(view);

    let mut cells: Vec<Option<&HeadRow>> = vec![None; view.n_layers as usize * view.n_heads as usize];
    for h in &view.heads {
        if h.layer < view.n_layers && h.head < view.n_heads {
            cells[(h.layer * view.n_heads + h.head) as usize] = Some(h);
        }
    }
    for l in 0..view.n_layers {
        for hd in 0..view.n_heads {
            let (x, y) = (x0 + hd as f64 * cw, y0 + l as f64 * ch);
            let label = head_label(l, hd);
            let (fill, tip) = match cells[(l * view.n_heads + hd) as usize] {
                None => (Fill::Solid(NO_DATA), format!("head {label}: no data")),
                Some(h) if h.excluded => (
                    Fill::Hatch,
                    format!(
                        "head {label}: excluded ({} arcs < {}); {}",
                        h.arcs,
                        context.min_arcs,
                        percent(h.proportion)
                    ),
                ),
                Some(h) if !h.proportion.is_finite() => (
                    Fill::Solid(NO_DATA),
                    format!("head {label}: no value ({} arcs)", h.arcs),
                ),
                Some(h) => (
                    Fill::Solid(blues(h.proportion * 100.0 / ctop)),
                    format!(
                        "head {label}: {} of {} arcs{}",
                        percent(h.proportion),
                        h.arcs,
                        if h.significant { ", significant" } else { "" }
                    ),
                ),
            };
            scene.rect(x, y, cw, ch, fill, None, Some(tip));
        }
    }
    scene.rect(x0, y0, gw, gh, Fill::None, Some(AXIS), None);

    // Row labels (layers, 1-based) and column labels (heads, 1-based).
    let row_every = (11.0 / ch).ceil().max(1.0) as u32;
    let row_size = ch.clamp(8.0, LABEL) * 0.95;
    for l in (0..view.n_layers).filter(|l| (l + 1) % row_every == 0 || *l == 0) {
        let y = y0 + (l as f64 + 0.5) * ch + row_size * 0.35;
        scene.text(x0 - 5.0, y, &(l as u64 + 1).to_string(), row_size, Anchor::End);
    }
    let col_every = (16.0 / cw).ceil().max(1.0) as u32;
    for hd in (0..view.n_heads).filter(|h| (h + 1) % col_every == 0 || *h == 0) {
        let x = x0 + (hd as f64 + 0.5) * cw;
        scene.text(
            x,
            y0 + gh + 14.0,
            &(hd as u64 + 1).to_string(),
            TICK,
            Anchor::Middle,
        );
    }
    scene.text(x0 + gw / 2.0, y0 + gh + 30.0, "Head", LABEL, Anchor::Middle);
    scene.text_styled(
        x0 - 34.0,
        y0 + gh / 2.0,
        "Layer",
        LABEL,
        Anchor::Middle,
        INK,
        false,
        true,
    );

    // Layer-max bars, aligned with the heatmap rows.
    let bx0 = x0 + gw + 28.0;
    let bw = 150.0;
    let max_seen = view.layer_max.iter().copied().fold(f64::NAN, f64::max) * 100.0;
    let (btop, bstep) = nice_axis(max_seen);
    scene.text(bx0, y0 - 8.0, "Layer max (%)", LABEL, Anchor::Start);
    for t in ticks(btop, bstep) {
        let x = bx0 + t / btop * bw;
        scene.line(x, y0, x, y0 + gh, GRID, 1.0);
        scene.line(x, y0 + gh, x, y0 + gh + 4.0, AXIS, 1.0);
        scene.text(x, y0 + gh + 14.0, &tick_label(t, bstep), TICK, Anchor::Middle);
    }
    for (l, m) in view.layer_max.iter().enumerate() {
        let y = y0 + l as f64 * ch;
        if m.is_finite() {
            let w = (m * 100.0 / btop).clamp(0.0, 1.0) * bw;
            scene.rect(
                bx0,
                y + ch * 0.15,
                w,
                ch * 0.7,
                Fill::Solid(BAR),
                None,
                Some(format!("layer {}: max {}", l + 1, percent(*m))),
            );
            if ch >= 12.0 {
                scene.text(
                    bx0 + w + 3.0,
                    y + ch * 0.5 + 3.5,
                    &fixed(m * 100.0, 1),
                    TICK,
                    Anchor::Start,
                );
            }
        }
    }
    scene.line(bx0, y0, bx0, y0 + gh, AXIS, 1.0);
    scene.line(bx0, y0 + gh, bx0 + bw, y0 + gh, AXIS, 1.0);
    need = need.max(bx0 + bw + 40.0);

    // Legend: the colour scale, then swatches for excluded heads and missing values.
    let ly = y0 + gh + 58.0;
    let lw = gw.clamp(180.0, 280.0);
    scene.text(x0, ly - 6.0, "proportion (%)", TICK, Anchor::Start);
    let steps = 56;
    for i in 0..steps {
        let t = (i as f64 + 0.5) / steps as f64;
        scene.rect(
            x0 + lw * i as f64 / steps as f64,
            ly,
            lw / steps as f64 + 0.05,
            10.0,
            Fill::Solid(blues(t)),
            None,
            None,
        );
    }
    scene.rect(x0, ly, lw, 10.0, Fill::None, Some(AXIS), None);
    for t in ticks(ctop, cstep) {
        let x = x0 + t / ctop * lw;
        scene.line(x, ly + 10.0, x, ly + 13.0, AXIS, 1.0);
        scene.text(x, ly + 23.0, &tick_label(t, cstep), TICK, Anchor::Middle);
    }
    let sx = x0 + lw + 30.0;
    scene.rect(sx, ly - 6.0, 16.0, 10.0, Fill::Hatch, Some(AXIS), None);
    let excluded = format!("excluded (arcs < {})", context.min_arcs);
    scene.text(sx + 22.0, ly + 3.0, &excluded, TICK, Anchor::Start);
    scene.rect(sx, ly + 10.0, 16.0, 10.0, Fill::Solid(NO_DATA), Some(AXIS), None);
    scene.text(sx + 22.0, ly + 19.0, "no data / no arcs", TICK, Anchor::Start);
    need = need.max(sx + 22.0 + text_width(&excluded, TICK) + 20.0);

    scene.width = need.ceil();
    scene.height = (ly + 40.0).ceil();
    scene
}

/// Figure 2: the top heads' proportions with CI error bars and the background rate.
pub(crate) fn top_heads(view: &FeatureView<'_>) -> Scene {
    let title = format!("{}: top heads", view.name);
    if view.top_heads.is_empty() {
        return empty_figure(&title, "no heads with enough arcs");
    }
    let n = view.top_heads.len() as f64;
    let slot = (640.0 / n).clamp(14.0, 56.0);
    let (x0, y0, ph) = (70.0, 74.0, 240.0);
    let pw = n * slot;
    let mut scene = Scene::new(&title);
    let subtitle = format!(
        "% of arcs where the feature holds; error bars: 95% CI, Bonferroni over {} heads; dashed: background {}",
        view.heads_included,
        percent(view.background_rate)
    );
    let mut need = header(&mut scene, 20.0, &title, &[subtitle]);

    let max = view
        .top_heads
        .iter()
        .flat_map(|t| [t.proportion, t.ci_high])
        .chain([view.background_rate])
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max);
    let (top, step) = nice_axis((max * 100.0).min(100.0));
    let y_of = |p: f64| y0 + ph - (p * 100.0 / top).clamp(0.0, 1.0) * ph;
    for t in ticks(top, step) {
        let y = y0 + ph - t / top * ph;
        scene.line(x0, y, x0 + pw, y, GRID, 1.0);
        scene.line(x0 - 4.0, y, x0, y, AXIS, 1.0);
        scene.text(x0 - 7.0, y + 3.5, &tick_label(t, step), TICK, Anchor::End);
    }
    let vertical_labels = slot < 38.0;
    for (i, t) in view.top_heads.iter().enumerate() {
        let cx = x0 + (i as f64 + 0.5) * slot;
        let label = head_label(t.layer, t.head);
        if t.proportion.is_finite() {
            let y = y_of(t.proportion);
            let tip = format!(
                "head {label}: {} (95% CI {} – {})",
                percent(t.proportion),
                percent(t.ci_low),
                percent(t.ci_high)
            );
            scene.rect(
                cx - slot * 0.3,
                y,
                slot * 0.6,
                y0 + ph - y,
                Fill::Solid(BAR),
                None,
                Some(tip),
            );
        } else {
            scene.text(cx, y0 + ph - 4.0, "n/a", TICK, Anchor::Middle);
        }
        if t.ci_low.is_finite() && t.ci_high.is_finite() {
            let (ya, yb) = (y_of(t.ci_low), y_of(t.ci_high));
            let cap = slot * 0.15;
            scene.line(cx, ya, cx, yb, INK, 1.2);
            scene.line(cx - cap, ya, cx + cap, ya, INK, 1.2);
            scene.line(cx - cap, yb, cx + cap, yb, INK, 1.2);
        }
        if vertical_labels {
            scene.text_styled(
                cx + 3.5,
                y0 + ph + 6.0,
                &label,
                TICK,
                Anchor::End,
                INK,
                false,
                true,
            );
        } else {
            scene.text(cx, y0 + ph + 15.0, &label, TICK, Anchor::Middle);
        }
    }
    if view.background_rate.is_finite() {
        let y = y_of(view.background_rate);
        scene.dashed(x0, y, x0 + pw, y, BACKGROUND, 1.5);
        let label = format!("background {}", percent(view.background_rate));
        scene.text_styled(
            x0 + pw + 6.0,
            y + 3.5,
            &label,
            TICK,
            Anchor::Start,
            BACKGROUND,
            false,
            false,
        );
        need = need.max(x0 + pw + 12.0 + text_width(&label, TICK));
    }
    scene.line(x0, y0, x0, y0 + ph, AXIS, 1.0);
    scene.line(x0, y0 + ph, x0 + pw, y0 + ph, AXIS, 1.0);
    let label_depth = if vertical_labels { 40.0 } else { 20.0 };
    scene.text(
        x0 + pw / 2.0,
        y0 + ph + label_depth + 14.0,
        "head (layer-head, 1-based)",
        LABEL,
        Anchor::Middle,
    );
    scene.text_styled(
        x0 - 44.0,
        y0 + ph / 2.0,
        "% of arcs",
        LABEL,
        Anchor::Middle,
        INK,
        false,
        true,
    );
    scene.width = need.max(x0 + pw + 30.0).max(420.0).ceil();
    scene.height = (y0 + ph + label_depth + 28.0).ceil();
    scene
}

/// Figure 3: mean proportion per layer with the centre of gravity marked.
pub(crate) fn layer_profile(view: &FeatureView<'_>) -> Scene {
    let title = format!("{}: mean proportion per layer", view.name);
    if view.n_layers == 0 {
        return empty_figure(&title, "no layers to show");
    }
    let nl = view.n_layers as f64;
    let sp = (640.0 / nl).clamp(3.0, 40.0);
    let (x0, y0, ph) = (70.0, 74.0, 220.0);
    let pw = (nl * sp).max(120.0);
    let sp = pw / nl;
    let mut scene = Scene::new(&title);
    let subtitle = format!(
        "macro mean over included heads; centre of gravity Σ l·w / Σ w = {} (0-based layer, as provis)",
        fixed(view.center_of_gravity, 2)
    );
    let mut need = header(&mut scene, 20.0, &title, &[subtitle]);
    let max = view
        .layer_mean
        .iter()
        .copied()
        .chain([view.background_rate])
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max);
    let (top, step) = nice_axis((max * 100.0).min(100.0));
    let x_of = |l: f64| x0 + (l + 0.5) * sp;
    let y_of = |p: f64| y0 + ph - (p * 100.0 / top).clamp(0.0, 1.0) * ph;
    for t in ticks(top, step) {
        let y = y0 + ph - t / top * ph;
        scene.line(x0, y, x0 + pw, y, GRID, 1.0);
        scene.line(x0 - 4.0, y, x0, y, AXIS, 1.0);
        scene.text(x0 - 7.0, y + 3.5, &tick_label(t, step), TICK, Anchor::End);
    }
    let every = (22.0 / sp).ceil().max(1.0) as usize;
    for l in (0..view.n_layers as usize).filter(|l| (l + 1) % every == 0 || *l == 0) {
        let x = x_of(l as f64);
        scene.line(x, y0 + ph, x, y0 + ph + 4.0, AXIS, 1.0);
        scene.text(x, y0 + ph + 15.0, &(l + 1).to_string(), TICK, Anchor::Middle);
    }
    if view.background_rate.is_finite() {
        let y = y_of(view.background_rate);
        scene.dashed(x0, y, x0 + pw, y, BACKGROUND, 1.5);
        let label = format!("background {}", percent(view.background_rate));
        scene.text_styled(
            x0 + pw + 6.0,
            y + 3.5,
            &label,
            TICK,
            Anchor::Start,
            BACKGROUND,
            false,
            false,
        );
        need = need.max(x0 + pw + 12.0 + text_width(&label, TICK));
    }
    let cog = view.center_of_gravity;
    if cog.is_finite() && (-0.5..=nl - 0.5).contains(&cog) {
        let x = x_of(cog);
        scene.dashed(x, y0, x, y0 + ph, HIGHLIGHT, 1.5);
        scene.circle(
            x,
            y0 + ph,
            4.5,
            HIGHLIGHT,
            Some(format!("centre of gravity {}", fixed(cog, 2))),
        );
        let label = format!("centre of gravity {}", fixed(cog, 2));
        let anchor = if x - x0 < pw * 0.3 {
            Anchor::Start
        } else if x - x0 > pw * 0.7 {
            Anchor::End
        } else {
            Anchor::Middle
        };
        let lx = match anchor {
            Anchor::Start => x + 4.0,
            Anchor::End => x - 4.0,
            Anchor::Middle => x,
        };
        scene.text_styled(lx, y0 - 6.0, &label, TICK, anchor, HIGHLIGHT, true, false);
    }
    // The profile: segments between consecutive finite means, then the points.
    let mut segment: Vec<(f64, f64)> = Vec::new();
    for (l, m) in view.layer_mean.iter().enumerate() {
        if m.is_finite() {
            segment.push((x_of(l as f64), y_of(*m)));
        } else {
            scene.polyline(std::mem::take(&mut segment), BAR, 2.0);
        }
    }
    scene.polyline(segment, BAR, 2.0);
    for (l, m) in view.layer_mean.iter().enumerate() {
        if m.is_finite() {
            let tip = format!("layer {}: mean {}", l + 1, percent(*m));
            scene.circle(
                x_of(l as f64),
                y_of(*m),
                if sp >= 8.0 { 3.5 } else { 2.0 },
                BAR,
                Some(tip),
            );
        }
    }
    scene.line(x0, y0, x0, y0 + ph, AXIS, 1.0);
    scene.line(x0, y0 + ph, x0 + pw, y0 + ph, AXIS, 1.0);
    scene.text(x0 + pw / 2.0, y0 + ph + 34.0, "Layer", LABEL, Anchor::Middle);
    scene.text_styled(
        x0 - 44.0,
        y0 + ph / 2.0,
        "mean % of arcs",
        LABEL,
        Anchor::Middle,
        INK,
        false,
        true,
    );
    scene.width = need.max(x0 + pw + 30.0).max(420.0).ceil();
    scene.height = (y0 + ph + 48.0).ceil();
    scene
}

/// The amino acids of the similarity rows: the standard 20 that occur, in the usual order, then any others sorted.
fn aa_order(results: &AnalysisResults) -> Vec<String> {
    let mut seen: Vec<&str> = results
        .aa_similarity
        .iter()
        .flat_map(|r| [r.aa_a.as_str(), r.aa_b.as_str()])
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let mut order: Vec<String> = AMINO_ACIDS
        .chars()
        .map(|c| c.to_string())
        .filter(|c| seen.contains(&c.as_str()))
        .collect();
    for s in seen {
        if !order.iter().any(|o| o == s) {
            order.push(s.to_string());
        }
    }
    order.truncate(MAX_GRID as usize);
    order
}

/// Figure 4: amino-acid attention similarity (Pearson r across heads) beside BLOSUM62; `None` without rows.
pub(crate) fn aa_similarity(results: &AnalysisResults) -> Option<Scene> {
    if results.aa_similarity.is_empty() {
        return None;
    }
    let order = aa_order(results);
    let n = order.len();
    let idx = |a: &str| order.iter().position(|o| o == a);
    let mut att = vec![f64::NAN; n * n];
    let mut blo = vec![f64::NAN; n * n];
    for r in &results.aa_similarity {
        if let (Some(i), Some(j)) = (idx(&r.aa_a), idx(&r.aa_b)) {
            for (a, b) in [(i, j), (j, i)] {
                att[a * n + b] = r.attention_r;
                blo[a * n + b] = r.blosum62;
            }
        }
    }
    let bmax = blo
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1.0)
        .ceil();
    let title = format!(
        "Amino-acid attention similarity vs BLOSUM62 (Pearson r = {})",
        results
            .blosum62_pearson_r
            .map(|r| fixed(r, 3))
            .unwrap_or_else(|| "n/a".to_string())
    );
    let mut scene = Scene::new(&title);
    let need = header(
        &mut scene,
        20.0,
        &title,
        &["left: Pearson r of two amino acids' attention proportions across included heads; right: BLOSUM62".to_string()],
    );
    let cell = (320.0 / n as f64).clamp(4.0, 18.0);
    let side = cell * n as f64;
    let py = 96.0;
    let px0 = 44.0;
    let px1 = px0 + side + 64.0;
    let panels: [(f64, &str, &[f64], f64); 2] = [
        (px0, "attention similarity (r)", &att, 1.0),
        (px1, "BLOSUM62", &blo, bmax),
    ];
    for (x0, name, values, scale) in panels {
        scene.text_styled(x0, py - 26.0, name, LABEL, Anchor::Start, INK, true, false);
        for i in 0..n {
            for j in 0..n {
                let v = values[i * n + j];
                let (fill, tip) = if v.is_finite() {
                    (
                        Fill::Solid(diverging((v / scale + 1.0) / 2.0)),
                        format!("{}–{}: {}", order[i], order[j], fixed(v, 2)),
                    )
                } else {
                    (Fill::Solid(NO_DATA), format!("{}–{}: n/a", order[i], order[j]))
                };
                scene.rect(
                    x0 + j as f64 * cell,
                    py + i as f64 * cell,
                    cell,
                    cell,
                    fill,
                    None,
                    Some(tip),
                );
            }
        }
        scene.rect(x0, py, side, side, Fill::None, Some(AXIS), None);
        let size = (cell * 0.75).clamp(6.0, TICK);
        if cell >= 7.0 {
            for (k, aa) in order.iter().enumerate() {
                let c = (k as f64 + 0.5) * cell;
                scene.text(x0 + c, py - 4.0, aa, size, Anchor::Middle);
                scene.text(x0 - 4.0, py + c + size * 0.35, aa, size, Anchor::End);
            }
        }
        // Legend: diverging bar with ticks at −max, 0, max.
        let ly = py + side + 18.0;
        let lw = side.max(120.0);
        let steps = 40;
        for s in 0..steps {
            let t = (s as f64 + 0.5) / steps as f64;
            scene.rect(
                x0 + lw * s as f64 / steps as f64,
                ly,
                lw / steps as f64 + 0.05,
                9.0,
                Fill::Solid(diverging(t)),
                None,
                None,
            );
        }
        scene.rect(x0, ly, lw, 9.0, Fill::None, Some(AXIS), None);
        let decimals = if scale == 1.0 { 1 } else { 0 };
        for (k, v) in [-scale, 0.0, scale].iter().enumerate() {
            let x = x0 + lw * k as f64 / 2.0;
            scene.line(x, ly + 9.0, x, ly + 12.0, AXIS, 1.0);
            scene.text(x, ly + 22.0, &fixed(*v, decimals), TICK, Anchor::Middle);
        }
    }
    scene.width = need.max(px1 + side.max(120.0) + 30.0).ceil();
    scene.height = (py + side + 52.0).ceil();
    Some(scene)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes_cover_the_data() {
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(nice_axis(f64::NAN), (1.0, 0.2));
        let (top, step) = nice_axis(37.2);
        assert!((37.2..=50.0).contains(&top), "{top}");
        assert!((top / step - (top / step).round()).abs() < 1e-9);
        assert_eq!(nice_axis(100.0).0, 100.0);
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(20.0, 5.0), "20");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
    }

    #[test]
    fn centre_of_gravity_is_zero_based_and_skips_nan() {
        assert_eq!(center_of_gravity(&[0.0, 1.0, f64::NAN]), 1.0);
        assert_eq!(center_of_gravity(&[1.0, 1.0, 1.0]), 1.0);
        assert!(center_of_gravity(&[]).is_nan());
        assert!(center_of_gravity(&[0.0, 0.0]).is_nan());
    }

    #[test]
    fn heads_are_labelled_one_based() {
        assert_eq!(head_label(11, 3), "12-4");
        assert_eq!(head_label(u32::MAX, 0), "4294967296-1");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(percent(f64::NAN), "n/a");
    }
}
