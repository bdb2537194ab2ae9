//! A tiny vector scene — rectangles, lines, polylines, circles and text in
//! SVG user units — that every figure is drawn into once and then rendered
//! both as SVG ([`super::svg`]) and as PNG ([`super::png`]), so the two
//! formats always show the same picture.

/// An opaque sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`.
    pub(crate) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Near-black used for text and axes.
pub(crate) const INK: Rgb = Rgb(0x22, 0x22, 0x22);
/// Grey of axis lines and frames.
pub(crate) const AXIS: Rgb = Rgb(0x66, 0x66, 0x66);
/// Light grey of grid lines.
pub(crate) const GRID: Rgb = Rgb(0xe3, 0xe3, 0xe3);
/// Panel background of empty figures.
pub(crate) const PANEL: Rgb = Rgb(0xfa, 0xfa, 0xfa);
/// Cells without data.
pub(crate) const NO_DATA: Rgb = Rgb(0xd9, 0xd9, 0xd9);
/// Background of hatched (excluded) cells.
pub(crate) const HATCH_BG: Rgb = Rgb(0xee, 0xee, 0xee);
/// Stripes of hatched (excluded) cells.
pub(crate) const HATCH_FG: Rgb = Rgb(0x8c, 0x8c, 0x8c);
/// Period of the hatch stripes, in user units.
pub(crate) const HATCH_PERIOD: f64 = 4.0;
/// Bars.
pub(crate) const BAR: Rgb = Rgb(0x42, 0x92, 0xc6);
/// Background-rate lines.
pub(crate) const BACKGROUND: Rgb = Rgb(0xd6, 0x27, 0x28);
/// Centre-of-gravity marks.
pub(crate) const HIGHLIGHT: Rgb = Rgb(0xe6, 0x7e, 0x00);
/// Dash length of dashed lines, in user units.
pub(crate) const DASH: f64 = 5.0;
/// Gap between dashes, in user units.
pub(crate) const GAP: f64 = 3.0;

/// How a rectangle is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fill {
    /// A flat colour.
    Solid(Rgb),
    /// Diagonal grey stripes (excluded heads).
    Hatch,
    /// Outline only.
    None,
}

/// Horizontal alignment of text relative to its anchor point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// The text starts at the point.
    Start,
    /// The text is centred on the point.
    Middle,
    /// The text ends at the point.
    End,
}

/// One drawing primitive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// An axis-aligned rectangle.
    Rect {
        /// Left edge.
        x: f64,
        /// Top edge.
        y: f64,
        /// Width.
        w: f64,
        /// Height.
        h: f64,
        /// Fill.
        fill: Fill,
        /// Outline colour (1 unit wide), if any.
        stroke: Option<Rgb>,
        /// Tooltip (SVG only).
        tip: Option<String>,
    },
    /// A straight line.
    Line {
        /// Start x.
        x1: f64,
        /// Start y.
        y1: f64,
        /// End x.
        x2: f64,
        /// End y.
        y2: f64,
        /// Colour.
        color: Rgb,
        /// Width in user units.
        width: f64,
        /// Dashed ([`DASH`] on, [`GAP`] off).
        dashed: bool,
    },
    /// Connected line segments.
    Polyline {
        /// Vertices.
        points: Vec<(f64, f64)>,
        /// Colour.
        color: Rgb,
        /// Width in user units.
        width: f64,
    },
    /// A filled disc.
    Circle {
        /// Centre x.
        cx: f64,
        /// Centre y.
        cy: f64,
        /// Radius.
        r: f64,
        /// Colour.
        fill: Rgb,
        /// Tooltip (SVG only).
        tip: Option<String>,
    },
    /// A line of text; `(x, y)` is on the baseline.
    Text {
        /// Anchor x.
        x: f64,
        /// Baseline y.
        y: f64,
        /// The text.
        text: String,
        /// Font size in user units.
        size: f64,
        /// Alignment.
        anchor: Anchor,
        /// Colour.
        color: Rgb,
        /// Bold.
        bold: bool,
        /// Rotated by −90° about `(x, y)` (reads bottom to top).
        vertical: bool,
    },
}

/// A figure: its size in user units, its title and its shapes in paint order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scene {
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Title (SVG `<title>`).
    pub title: String,
    /// Shapes, painted in order.
    pub shapes: Vec<Shape>,
}

impl Scene {
    /// An empty scene.
    pub(crate) fn new(title: &str) -> Self {
        Self {
            width: 100.0,
            height: 100.0,
            title: title.to_string(),
            shapes: Vec::new(),
        }
    }

    /// Adds a rectangle.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rect(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Fill,
        stroke: Option<Rgb>,
        tip: Option<String>,
    ) {
        self.shapes.push(Shape::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            tip,
        });
    }

    /// Adds a solid line.
    pub(crate) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, color: Rgb, width: f64) {
        self.shapes.push(Shape::Line {
            x1,
            y1,
            x2,
            y2,
            color,
            width,
            dashed: false,
        });
    }

    /// Adds a dashed line.
    pub(crate) fn dashed(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, color: Rgb, width: f64) {
        self.shapes.push(Shape::Line {
            x1,
            y1,
            x2,
            y2,
            color,
            width,
            dashed: true,
        });
    }

    /// Adds a polyline (ignored with fewer than two points).
    pub(crate) fn polyline(&mut self, points: Vec<(f64, f64)>, color: Rgb, width: f64) {
        if points.len() >= 2 {
            self.shapes.push(Shape::Polyline { points, color, width });
        }
    }

    /// Adds a disc.
    pub(crate) fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: Rgb, tip: Option<String>) {
        self.shapes.push(Shape::Circle { cx, cy, r, fill, tip });
    }

    /// Adds horizontal text in the ink colour.
    pub(crate) fn text(&mut self, x: f64, y: f64, text: &str, size: f64, anchor: Anchor) {
        self.text_styled(x, y, text, size, anchor, INK, false, false);
    }

    /// Adds text with every option.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn text_styled(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        size: f64,
        anchor: Anchor,
        color: Rgb,
        bold: bool,
        vertical: bool,
    ) {
        if !text.is_empty() {
            self.shapes.push(Shape::Text {
                x,
                y,
                text: text.to_string(),
                size,
                anchor,
                color,
                bold,
                vertical,
            });
        }
    }
}

/// Estimated advance width of `text` at `size` (both renderers use about 0.6 em per character).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// Linear interpolation through evenly spaced colour stops; `t` is clamped to [0, 1], NaN maps to 0.
pub(crate) fn interpolate(stops: &[Rgb], t: f64) -> Rgb {
    let Some(first) = stops.first() else {
        return NO_DATA;
    };
    if stops.len() == 1 {
        return *first;
    }
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (stops.len() - 1) as f64;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round().clamp(0.0, 255.0) as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// matplotlib's sequential "Blues" (provis' heatmap colour map), `t` in [0, 1].
pub(crate) fn blues(t: f64) -> Rgb {
    const STOPS: [Rgb; 9] = [
        Rgb(0xf7, 0xfb, 0xff),
        Rgb(0xde, 0xeb, 0xf7),
        Rgb(0xc6, 0xdb, 0xef),
        Rgb(0x9e, 0xca, 0xe1),
        Rgb(0x6b, 0xae, 0xd6),
        Rgb(0x42, 0x92, 0xc6),
        Rgb(0x21, 0x71, 0xb5),
        Rgb(0x08, 0x51, 0x9c),
        Rgb(0x08, 0x30, 0x6b),
    ];
    interpolate(&STOPS, t)
}

/// matplotlib's diverging "RdBu_r" (blue negative, white zero, red positive), `t` in [0, 1].
pub(crate) fn diverging(t: f64) -> Rgb {
    const STOPS: [Rgb; 11] = [
        Rgb(0x05, 0x30, 0x61),
        Rgb(0x21, 0x66, 0xac),
        Rgb(0x43, 0x93, 0xc3),
        Rgb(0x92, 0xc5, 0xde),
        Rgb(0xd1, 0xe5, 0xf0),
        Rgb(0xf7, 0xf7, 0xf7),
        Rgb(0xfd, 0xdb, 0xc7),
        Rgb(0xf4, 0xa5, 0x82),
        Rgb(0xd6, 0x60, 0x4d),
        Rgb(0xb2, 0x18, 0x2b),
        Rgb(0x67, 0x00, 0x1f),
    ];
    interpolate(&STOPS, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_hit_their_ends_and_survive_nan() {
        assert_eq!(blues(0.0), Rgb(0xf7, 0xfb, 0xff));
        assert_eq!(blues(1.0), Rgb(0x08, 0x30, 0x6b));
        assert_eq!(blues(f64::NAN), blues(0.0));
        assert_eq!(diverging(0.5), Rgb(0xf7, 0xf7, 0xf7));
        assert_eq!(diverging(7.0), diverging(1.0));
        assert_eq!(Rgb(1, 2, 255).hex(), "#0102ff");
    }
}
