//! The probe figure in the style of the paper's Figure 5: one task's
//! validation metric by layer, the embedding probe beside the attention probe
//! (contacts), drawn with the report's scene and SVG renderer.

use super::scene::{AXIS, Anchor, BACKGROUND, BAR, GRID, INK, Rgb, Scene};
use super::svg::render;
use crate::probe::output::ProbeRow;

/// The headline metric of a task's per-layer probes.
pub fn headline_metric(task: &str) -> &'static str {
    match task {
        "ss4" => "f1_macro",
        "contact" => "precision_at_L/5",
        _ => "precision_at_L/20",
    }
}

/// One line of the figure: probe kind, colour, (layer, value) points.
type Series<'a> = (&'a str, Rgb, Vec<(i32, f64)>);

const SERIES: [(&str, Rgb); 2] = [("embedding", BAR), ("attention", BACKGROUND)];

/// SVG of `task`'s headline metric by layer for the embedding and attention
/// probes found in `rows`; `None` when no row of the task has a layer ≥ 0.
pub fn probe_figure_svg(rows: &[ProbeRow], task: &str) -> Option<String> {
    let metric = headline_metric(task);
    let pick = |kind: &str| -> Vec<(i32, f64)> {
        rows.iter()
            .filter(|r| r.task == task && r.kind == kind && r.metric == metric && r.layer >= 0)
            .map(|r| (r.layer, r.value))
            .collect()
    };
    let series: Vec<Series> = SERIES
        .iter()
        .map(|(k, c)| (*k, *c, pick(k)))
        .filter(|(_, _, p)| !p.is_empty())
        .collect();
    let n_layers = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).max()? as f64 + 1.0;
    let title = format!("{task}: {metric} of linear probes by layer");
    let mut scene = Scene::new(&title);
    let (x0, y0, pw, ph) = (70.0, 60.0, (n_layers * 24.0).clamp(200.0, 640.0), 220.0);
    let x_of = |l: f64| x0 + (l + 0.5) * pw / n_layers;
    let y_of = |v: f64| y0 + ph - v.clamp(0.0, 1.0) * ph;
    scene.text_styled(x0, 24.0, &title, 14.0, Anchor::Start, INK, true, false);
    for t in 0..=5 {
        let v = f64::from(t) / 5.0;
        scene.line(x0, y_of(v), x0 + pw, y_of(v), GRID, 1.0);
        scene.text(x0 - 7.0, y_of(v) + 3.5, &format!("{v:.1}"), 11.0, Anchor::End);
    }
    let every = (n_layers / 16.0).ceil().max(1.0) as usize;
    for l in (0..n_layers as usize).filter(|l| l % every == 0) {
        scene.text(
            x_of(l as f64),
            y0 + ph + 15.0,
            &(l + 1).to_string(),
            11.0,
            Anchor::Middle,
        );
    }
    for (i, (kind, color, points)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(l, v)| (x_of(f64::from(l)), y_of(v)))
            .collect();
        for (&(l, v), &(x, y)) in points.iter().filter(|p| p.1.is_finite()).zip(&pts) {
            scene.circle(
                x,
                y,
                3.5,
                *color,
                Some(format!("{kind} probe, layer {}: {v:.3}", l + 1)),
            );
        }
        scene.polyline(pts, *color, 2.0);
        let ly = y0 + 14.0 * i as f64;
        scene.line(x0 + pw + 12.0, ly, x0 + pw + 30.0, ly, *color, 2.5);
        scene.text(
            x0 + pw + 34.0,
            ly + 4.0,
            &format!("{kind} probe"),
            11.0,
            Anchor::Start,
        );
    }
    scene.line(x0, y0, x0, y0 + ph, AXIS, 1.0);
    scene.line(x0, y0 + ph, x0 + pw, y0 + ph, AXIS, 1.0);
    scene.text(x0 + pw / 2.0, y0 + ph + 34.0, "Layer", 12.0, Anchor::Middle);
    scene.text_styled(
        x0 - 44.0,
        y0 + ph / 2.0,
        metric,
        12.0,
        Anchor::Middle,
        INK,
        false,
        true,
    );
    scene.width = (x0 + pw + 150.0).ceil();
    scene.height = (y0 + ph + 50.0).ceil();
    Some(render(&scene))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, layer: i32, metric: &str, value: f64) -> ProbeRow {
        ProbeRow {
            task: "contact".into(),
            layer,
            kind: kind.into(),
            metric: metric.into(),
            value,
            n_train: 1,
            n_eval: 1,
        }
    }

    #[test]
    fn draws_both_probes_by_layer_and_skips_other_rows() {
        let rows = vec![
            row("embedding", 0, "precision_at_L/5", 0.2),
            row("embedding", 1, "precision_at_L/5", 0.4),
            row("attention", 0, "precision_at_L/5", 0.1),
            row("attention", 1, "precision_at_L/5", 0.6),
            row("attention", 1, "precision_at_L/5:long", 0.9),
            row("contact_regression", -1, "precision_at_L/5", 0.7),
        ];
        let svg = probe_figure_svg(&rows, "contact").unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("embedding probe") && svg.contains("attention probe"));
        assert!(svg.contains("attention probe, layer 2: 0.600"));
        assert!(!svg.contains("0.900") && !svg.contains("0.700"));
        assert!(probe_figure_svg(&rows, "ss4").is_none());
    }
}
