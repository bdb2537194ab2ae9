//! Renders a [`Scene`] as a standalone SVG document (no scripts, no external
//! resources); all text is XML-escaped and all numbers are finite and printed
//! with fixed precision, so the same scene always gives the same bytes.

use std::fmt::Write as _;

use super::scene::{Anchor, Fill, HATCH_BG, HATCH_FG, HATCH_PERIOD, Scene, Shape};
use super::scene::{DASH, GAP};

/// Escapes text for XML/HTML content and attribute values; drops characters XML cannot carry.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with two decimals, trailing zeros trimmed; non-finite values print as 0.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let mut s = format!("{v:.2}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".to_string() } else { s }
}

/// The SVG document of a scene (starts with `<svg`, ends with `</svg>`).
pub(crate) fn render(scene: &Scene) -> String {
    let mut out = String::new();
    let (w, h) = (num(scene.width), num(scene.height));
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\">"
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&scene.title));
    let p = num(HATCH_PERIOD);
    let _ = writeln!(
        out,
        "<defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"{p}\" height=\"{p}\">\
         <rect width=\"{p}\" height=\"{p}\" fill=\"{}\"/>\
         <path d=\"M-1,1 l2,-2 M0,{p} l{p},-{p} M{},{} l2,-2\" stroke=\"{}\" stroke-width=\"1\"/>\
         </pattern></defs>",
        HATCH_BG.hex(),
        num(HATCH_PERIOD - 1.0),
        num(HATCH_PERIOD + 1.0),
        HATCH_FG.hex()
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>"
    );
    for shape in &scene.shapes {
        shape_svg(&mut out, shape);
    }
    out.push_str("</svg>");
    out
}

/// Appends one shape.
fn shape_svg(out: &mut String, shape: &Shape) {
    match shape {
        Shape::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            tip,
        } => {
            let fill = match fill {
                Fill::Solid(c) => c.hex(),
                Fill::Hatch => "url(#hatch)".to_string(),
                Fill::None => "none".to_string(),
            };
            let stroke = match stroke {
                Some(c) => format!(" stroke=\"{}\" stroke-width=\"1\"", c.hex()),
                None => String::new(),
            };
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"{stroke}",
                num(*x),
                num(*y),
                num(w.max(0.0)),
                num(h.max(0.0))
            );
            close_with_tip(out, "rect", tip.as_deref());
        }
        Shape::Line {
            x1,
            y1,
            x2,
            y2,
            color,
            width,
            dashed,
        } => {
            let dash = if *dashed {
                format!(" stroke-dasharray=\"{},{}\"", num(DASH), num(GAP))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
                num(*x1),
                num(*y1),
                num(*x2),
                num(*y2),
                color.hex(),
                num(*width)
            );
        }
        Shape::Polyline { points, color, width } => {
            let pts: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"/>",
                pts.join(" "),
                color.hex(),
                num(*width)
            );
        }
        Shape::Circle { cx, cy, r, fill, tip } => {
            let _ = write!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"",
                num(*cx),
                num(*cy),
                num(r.max(0.0)),
                fill.hex()
            );
            close_with_tip(out, "circle", tip.as_deref());
        }
        Shape::Text {
            x,
            y,
            text,
            size,
            anchor,
            color,
            bold,
            vertical,
        } => {
            let anchor = match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            let weight = if *bold { " font-weight=\"bold\"" } else { "" };
            let rotate = if *vertical {
                format!(" transform=\"rotate(-90 {} {})\"", num(*x), num(*y))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\"{weight}{rotate}>{}</text>",
                num(*x),
                num(*y),
                num(*size),
                color.hex(),
                escape(text)
            );
        }
    }
}

/// Closes an element, with a `<title>` child when there is a tooltip.
fn close_with_tip(out: &mut String, element: &str, tip: Option<&str>) {
    match tip {
        Some(t) => {
            let _ = writeln!(out, "><title>{}</title></{element}>", escape(t));
        }
        None => out.push_str("/>\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::scene::{BAR, INK};

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn numbers_are_finite_and_trimmed() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.25), "1.25");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(f64::INFINITY), "0");
    }

    #[test]
    fn renders_every_shape() {
        let mut s = Scene::new("t <1>");
        s.rect(
            0.0,
            0.0,
            10.0,
            f64::NAN,
            Fill::Hatch,
            Some(INK),
            Some("tip & more".into()),
        );
        s.dashed(0.0, 0.0, 5.0, 5.0, BAR, 1.0);
        s.polyline(vec![(0.0, 0.0), (1.0, 1.0)], BAR, 1.0);
        s.circle(1.0, 1.0, 2.0, BAR, None);
        s.text_styled(1.0, 1.0, "x<y", 10.0, Anchor::Middle, INK, true, true);
        let svg = render(&s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>t &lt;1&gt;</title>"));
        assert!(svg.contains("tip &amp; more"));
        assert!(svg.contains("x&lt;y"));
        assert!(!svg.contains("NaN"));
    }
}
