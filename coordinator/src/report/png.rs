//! Rasterises a [`Scene`] into an RGB image and encodes it as PNG with the
//! `png` crate (8-bit RGB, fixed compression and filter, no timestamps or
//! other ancillary chunks), so the same scene always gives the same bytes.
//! Text is drawn with `ab_glyph` from the bundled Liberation Sans (SIL OFL
//! 1.1, metric-compatible with the Arial/Helvetica the SVGs name; see
//! `assets/LiberationSans-LICENSE.txt`); bold is the regular face drawn twice,
//! one pixel apart.

use std::io;
use std::sync::LazyLock;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};

use super::scene::{Anchor, DASH, Fill, GAP, HATCH_BG, HATCH_FG, HATCH_PERIOD, Rgb, Scene, Shape};

/// Pixels per user unit of the PNG figures.
pub(crate) const SCALE: f64 = 2.0;
/// Largest width or height of a PNG figure, in pixels.
const MAX_SIDE: usize = 8192;

/// The bundled font's bytes.
const FONT_BYTES: &[u8] = include_bytes!("assets/LiberationSans-Regular.ttf");
/// The bundled font, parsed once.
static FONT: LazyLock<Option<FontRef<'static>>> = LazyLock::new(|| FontRef::try_from_slice(FONT_BYTES).ok());

/// An RGB raster.
pub(crate) struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
    /// Pixels per user unit.
    scale: f64,
}

/// The pixel size of a scene at [`SCALE`] (at least 1×1, at most [`MAX_SIDE`] per side).
pub(crate) fn pixel_size(scene: &Scene) -> (usize, usize) {
    let side = |v: f64| {
        let px = (v * SCALE).ceil();
        if px.is_finite() {
            (px.max(1.0) as usize).min(MAX_SIDE)
        } else {
            1
        }
    };
    (side(scene.width), side(scene.height))
}

/// Rasterises a scene at [`SCALE`] pixels per unit on a white background.
pub(crate) fn rasterize(scene: &Scene) -> Canvas {
    let (width, height) = pixel_size(scene);
    let mut canvas = Canvas {
        width,
        height,
        pixels: vec![255; width * height * 3],
        scale: SCALE,
    };
    for shape in &scene.shapes {
        canvas.draw(shape);
    }
    canvas
}

/// Encodes a scene as PNG bytes.
pub(crate) fn render(scene: &Scene) -> io::Result<Vec<u8>> {
    let canvas = rasterize(scene);
    encode_rgb(canvas.width, canvas.height, &canvas.pixels)
}

/// Encodes row-major 8-bit RGB pixels as a PNG.
pub(crate) fn encode_rgb(width: usize, height: usize, pixels: &[u8]) -> io::Result<Vec<u8>> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
    if width == 0 || height == 0 || width > u32::MAX as usize / 4 || height > u32::MAX as usize / 4 {
        return Err(invalid("PNG dimensions out of range"));
    }
    if pixels.len() != width * height * 3 {
        return Err(invalid("pixel buffer does not match the PNG dimensions"));
    }
    let mut out = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    encoder.set_compression(::png::Compression::High);
    encoder.set_filter(::png::Filter::Adaptive);
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    writer.write_image_data(pixels).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)?;
    Ok(out)
}

/// A user-unit coordinate in pixels, rounded; non-finite values map far off-canvas.
fn px(v: f64, scale: f64) -> i64 {
    let p = (v * scale).round();
    if p.is_finite() {
        p.clamp(-1e9, 1e9) as i64
    } else {
        -1_000_000_000
    }
}

impl Canvas {
    /// Blends `c` over the pixel at `(x, y)` with coverage `a` in [0, 1]; off-canvas pixels are ignored.
    fn blend(&mut self, x: i64, y: i64, c: Rgb, a: f64) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 || a.is_nan() || a <= 0.0 {
            return;
        }
        let a = a.min(1.0);
        let i = (y as usize * self.width + x as usize) * 3;
        for (k, v) in [c.0, c.1, c.2].into_iter().enumerate() {
            let old = self.pixels[i + k] as f64;
            self.pixels[i + k] = (old + (v as f64 - old) * a).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Fills the pixel box `[x0, x1) × [y0, y1)` (clipped) with `colour(x, y)`.
    fn fill_box(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, colour: impl Fn(i64, i64) -> Rgb) {
        let (x0, x1) = (x0.max(0), x1.min(self.width as i64));
        let (y0, y1) = (y0.max(0), y1.min(self.height as i64));
        for y in y0..y1 {
            for x in x0..x1 {
                self.blend(x, y, colour(x, y), 1.0);
            }
        }
    }

    /// Draws one shape.
    fn draw(&mut self, shape: &Shape) {
        let s = self.scale;
        match shape {
            Shape::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
                ..
            } => {
                if !(w.is_finite() && h.is_finite() && *w > 0.0 && *h > 0.0) {
                    return;
                }
                let (x0, y0, x1, y1) = (px(*x, s), px(*y, s), px(x + w, s), px(y + h, s));
                let period = px(HATCH_PERIOD, s).max(2);
                let stripe = px(1.0, s).max(1);
                match fill {
                    Fill::Solid(c) => self.fill_box(x0, y0, x1.max(x0 + 1), y1.max(y0 + 1), |_, _| *c),
                    Fill::Hatch => self.fill_box(x0, y0, x1.max(x0 + 1), y1.max(y0 + 1), |x, y| {
                        if (x + y).rem_euclid(period) < stripe {
                            HATCH_FG
                        } else {
                            HATCH_BG
                        }
                    }),
                    Fill::None => {}
                }
                if let Some(c) = stroke {
                    let t = px(1.0, s).max(1);
                    let h0 = t / 2;
                    self.fill_box(x0 - h0, y0 - h0, x1 + t - h0, y0 + t - h0, |_, _| *c);
                    self.fill_box(x0 - h0, y1 - h0, x1 + t - h0, y1 + t - h0, |_, _| *c);
                    self.fill_box(x0 - h0, y0 - h0, x0 + t - h0, y1 + t - h0, |_, _| *c);
                    self.fill_box(x1 - h0, y0 - h0, x1 + t - h0, y1 + t - h0, |_, _| *c);
                }
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
                self.line((*x1, *y1), (*x2, *y2), *color, *width, *dashed);
            }
            Shape::Polyline { points, color, width } => {
                for pair in points.windows(2) {
                    self.line(pair[0], pair[1], *color, *width, false);
                }
            }
            Shape::Circle { cx, cy, r, fill, .. } => self.circle(*cx, *cy, *r, *fill),
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
                self.text(*x, *y, text, *size, *anchor, *color, *bold, *vertical);
            }
        }
    }

    /// An anti-aliased line segment with butt ends.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, width: f64, dashed: bool) {
        let s = self.scale;
        let (ax, ay, bx, by) = (a.0 * s, a.1 * s, b.0 * s, b.1 * s);
        if ![ax, ay, bx, by, width].iter().all(|v| v.is_finite()) {
            return;
        }
        let half = (width * s).max(1.0) / 2.0;
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let len = len2.sqrt();
        let (period, dash) = ((DASH + GAP) * s, DASH * s);
        let lim = |v: f64, n: usize| v.clamp(-1.0, n as f64 + 1.0) as i64;
        let x0 = lim(ax.min(bx) - half - 1.0, self.width);
        let x1 = lim(ax.max(bx) + half + 1.0, self.width);
        let y0 = lim(ay.min(by) - half - 1.0, self.height);
        let y1 = lim(ay.max(by) + half + 1.0, self.height);
        for y in y0.max(0)..y1.min(self.height as i64) {
            for x in x0.max(0)..x1.min(self.width as i64) {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - ax) * dx + (cy - ay) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                if dashed && (t * len).rem_euclid(period) >= dash {
                    continue;
                }
                let (qx, qy) = (ax + t * dx, ay + t * dy);
                let d = ((cx - qx).powi(2) + (cy - qy).powi(2)).sqrt();
                self.blend(x, y, c, half + 0.5 - d);
            }
        }
    }

    /// An anti-aliased filled disc.
    fn circle(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let s = self.scale;
        let (cx, cy, r) = (cx * s, cy * s, r * s);
        if !(cx.is_finite() && cy.is_finite() && r.is_finite() && r > 0.0) {
            return;
        }
        let lim = |v: f64, n: usize| v.clamp(0.0, n as f64) as i64;
        for y in lim(cy - r - 1.0, self.height)..lim(cy + r + 2.0, self.height) {
            for x in lim(cx - r - 1.0, self.width)..lim(cx + r + 2.0, self.width) {
                let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
                self.blend(x, y, c, r + 0.5 - d);
            }
        }
    }

    /// Text in the bundled font; `(x, y)` is the anchor on the baseline,
    /// vertical text reads bottom to top. Pixel coverage from `ab_glyph` is blended in.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        size: f64,
        anchor: Anchor,
        c: Rgb,
        bold: bool,
        vertical: bool,
    ) {
        let Some(font) = FONT.as_ref() else {
            return;
        };
        if text.is_empty() || !size.is_finite() || size <= 0.0 {
            return;
        }
        let s = self.scale;
        let scaled = font.as_scaled(PxScale::from((size * s).min(400.0) as f32));
        // Lay the glyphs out along the baseline, with kerning.
        let mut pen = 0.0f32;
        let mut placed = Vec::new();
        let mut prev = None;
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            placed.push(id.with_scale_and_position(scaled.scale(), ab_glyph::point(pen, 0.0)));
            pen += scaled.h_advance(id);
            prev = Some(id);
        }
        let start = match anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -f64::from(pen) / 2.0,
            Anchor::End => -f64::from(pen),
        };
        let (ox, oy) = (x * s, y * s);
        let passes: &[f32] = if bold { &[0.0, 0.9] } else { &[0.0] };
        for glyph in placed {
            for &dx in passes {
                let mut g = glyph.clone();
                g.position.x += dx;
                let Some(outlined) = font.outline_glyph(g) else {
                    continue;
                };
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    // along: offset along the writing direction; up: offset from the baseline.
                    let along = start + f64::from(b.min.x) + f64::from(gx);
                    let up = f64::from(b.min.y) + f64::from(gy);
                    let (px_x, px_y) = if vertical {
                        (ox + up, oy - along - 1.0)
                    } else {
                        (ox + along, oy + up)
                    };
                    self.blend(px_x.round() as i64, px_y.round() as i64, c, f64::from(cov));
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::scene::{BAR, INK};

    #[test]
    fn encodes_a_minimal_image() {
        let png = encode_rgb(1, 1, &[255, 0, 0]).unwrap();
        let decoder = ::png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (1, 1, ::png::ColorType::Rgb)
        );
        assert_eq!(&buf[..3], &[255, 0, 0]);
        assert!(encode_rgb(0, 1, &[]).is_err());
        assert!(encode_rgb(2, 1, &[0; 3]).is_err());
    }

    #[test]
    fn rasterises_shapes_where_the_svg_puts_them() {
        let mut s = Scene::new("t");
        s.width = 40.0;
        s.height = 20.0;
        s.rect(0.0, 0.0, 10.0, 10.0, Fill::Solid(BAR), None, None);
        s.rect(20.0, 0.0, 10.0, 10.0, Fill::Hatch, Some(INK), None);
        s.line(0.0, 15.0, 40.0, 15.0, INK, 1.0);
        s.text(1.0, 19.0, "Ag", 10.0, Anchor::Start);
        s.text_styled(35.0, 10.0, "x", 10.0, Anchor::Middle, INK, true, true);
        s.circle(f64::NAN, 0.0, 3.0, INK, None);
        let c = rasterize(&s);
        assert_eq!((c.width, c.height), (80, 40));
        let at = |x: usize, y: usize| &c.pixels[(y * c.width + x) * 3..(y * c.width + x) * 3 + 3];
        assert_eq!(at(5, 5), &[BAR.0, BAR.1, BAR.2]);
        assert_eq!(at(5, 30), &[INK.0, INK.1, INK.2]);
        assert_eq!(at(25, 5), &[255, 255, 255]);
        assert!((42..58).any(|x| at(x, 10) == [HATCH_FG.0, HATCH_FG.1, HATCH_FG.2]));
    }
}
