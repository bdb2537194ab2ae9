//! Per-sequence pages: `sequences/<stem>.html` shows a chosen head's
//! attention on one protein as arcs over the sequence and on the chain's Cα
//! trace in 3D (rotate with the mouse or arrow keys, zoom with the wheel or
//! +/-), with binding sites, PTMs and Cα contacts highlighted; built from
//! the attention the workers stored in `sequences.parquet`. The data of a
//! page is `sequences/<stem>.js`: weights are quantised to 1/255 and packed
//! as base64 (i: u16, j: u16, w: u8 per arc, little endian).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use headscan_proto::pb::SequenceAttention;
use headscan_proto::record::ProteinRecord;

use crate::stats::AnalysisResults;

/// Weights below this are not drawn (nor stored in the page).
pub const DISPLAY_FLOOR: f32 = 0.1;

/// One arc: from (query), to (key), weight.
pub type Arc = (u32, u32, f32);

/// One head's arcs on a sequence: 0-based layer, head, then (from, to, weight).
pub type HeadArcs = (u32, u32, Vec<Arc>);

/// One visualised sequence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceView {
    /// Record id.
    pub id: String,
    /// Residues (after truncation to the model's token limit).
    pub sequence: String,
    /// Cα coordinates, 3 per residue, NaN where unresolved; empty without a structure.
    pub ca: Vec<f32>,
    /// 0-based binding-site residues.
    pub binding_sites: Vec<u32>,
    /// 0-based PTM residues.
    pub ptm_sites: Vec<u32>,
    /// Per (layer, head), 0-based: its arcs (from, to, weight), weight ≥ the page's floor.
    pub heads: Vec<HeadArcs>,
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The arcs of one head packed for the page: weights ≥ [`DISPLAY_FLOOR`], in (from, to) order.
fn packed(arcs: &[(u32, u32, f32)]) -> String {
    let mut keep: Vec<_> = arcs
        .iter()
        .filter(|a| a.2 >= DISPLAY_FLOOR && a.0 <= u32::from(u16::MAX) && a.1 <= u32::from(u16::MAX))
        .collect();
    keep.sort_by_key(|a| (a.0, a.1));
    let mut bytes = Vec::with_capacity(keep.len() * 5);
    for (i, j, w) in keep {
        bytes.extend_from_slice(&(*i as u16).to_le_bytes());
        bytes.extend_from_slice(&(*j as u16).to_le_bytes());
        bytes.push((w.clamp(0.0, 1.0) * 255.0).round() as u8);
    }
    base64(&bytes)
}

/// `sequences/<stem>.js` of one sequence.
pub(crate) fn data_js(view: &SequenceView, n_layers: u32, n_heads: u32) -> String {
    let mut o = String::new();
    let string = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let _ = write!(
        o,
        "window.HEADSCAN_SEQ={{\"id\":{},\"sequence\":{},\"n_layers\":{n_layers},\"n_heads\":{n_heads},\"ca\":[",
        string(&view.id),
        string(&view.sequence)
    );
    let coords: Vec<String> = view
        .ca
        .iter()
        .map(|v| {
            if v.is_finite() {
                format!("{:.2}", v)
            } else {
                "null".into()
            }
        })
        .collect();
    o.push_str(&coords.join(","));
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let _ = write!(
        o,
        "],\"binding\":[{}],\"ptm\":[{}],\"heads\":{{",
        list(&view.binding_sites),
        list(&view.ptm_sites)
    );
    let mut first = true;
    for (l, h, arcs) in &view.heads {
        if l >= &n_layers || h >= &n_heads {
            continue;
        }
        if !first {
            o.push(',');
        }
        first = false;
        let _ = write!(o, "\"{}-{}\":\"{}\"", l + 1, h + 1, packed(arcs));
    }
    o.push_str("}};\n");
    o
}

/// The heads stored on the pages: each feature's top heads (every head when
/// `all` or when no feature has top heads).
pub fn chosen_heads(results: &AnalysisResults, all: bool) -> BTreeSet<(u32, u32)> {
    let mut heads = BTreeSet::new();
    if all || results.features.iter().all(|f| f.top_heads.is_empty()) {
        for l in 0..results.n_layers {
            for h in 0..results.n_heads {
                heads.insert((l, h));
            }
        }
    } else {
        for f in &results.features {
            heads.extend(f.top_heads.iter().map(|t| (t.layer, t.head)));
        }
    }
    heads
}

/// 0-based positions below `n`.
fn positions(p: Option<&[i32]>, n: usize) -> Vec<u32> {
    p.unwrap_or_default()
        .iter()
        .filter(|&&i| i >= 0 && (i as usize) < n)
        .map(|&i| i as u32)
        .collect()
}

/// The page of `record` (sequence, Cα trace, sites), truncated to `n` residues, without heads.
pub fn view_of_record(record: &ProteinRecord, n: usize) -> SequenceView {
    SequenceView {
        id: record.id.clone(),
        sequence: record.sequence.chars().take(n).collect(),
        ca: record
            .ca_coords
            .as_ref()
            .map(|c| c.iter().take(3 * n).copied().collect())
            .unwrap_or_default(),
        binding_sites: positions(record.binding_sites.as_deref(), n),
        ptm_sites: positions(record.ptm_sites.as_deref(), n),
        heads: Vec::new(),
    }
}

/// Pages from the attention the workers stored (`sequences.parquet`): for
/// each stored record whose dataset record is in `records`, the `heads`' arcs
/// ≥ [`DISPLAY_FLOOR`]. Stored records without a dataset record are skipped.
pub fn views_from_stored(
    stored: &[SequenceAttention],
    records: &[ProteinRecord],
    heads: &BTreeSet<(u32, u32)>,
) -> Vec<SequenceView> {
    let mut views = Vec::new();
    for s in stored {
        let Some(r) = records.iter().find(|r| r.id == s.id) else {
            continue;
        };
        let mut view = view_of_record(r, s.residues as usize);
        let mut by_head: std::collections::BTreeMap<(u32, u32), Vec<Arc>> =
            heads.iter().map(|&k| (k, Vec::new())).collect();
        for k in 0..s.weight.len() {
            let w = s.weight[k];
            if w < DISPLAY_FLOOR {
                continue;
            }
            if let Some(arcs) = by_head.get_mut(&(s.layer[k], s.head[k])) {
                arcs.push((s.i[k], s.j[k], w));
            }
        }
        view.heads = by_head.into_iter().map(|((l, h), a)| (l, h, a)).collect();
        views.push(view);
    }
    views
}

/// `sequences/<stem>.html` of one sequence.
pub(crate) fn page(view: &SequenceView, stem: &str, title: &str) -> String {
    let esc = super::svg::escape;
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{id} · {title}</title>\n<link rel=\"stylesheet\" href=\"../report.css\">\n</head>\n<body>\n\
         <nav><a href=\"../index.html\">← Overview</a></nav>\n\
         <h1>{id}</h1>\n<p class=\"meta\">{title} · {n} residues</p>\n\
         <p><label for=\"seq-head\">Head (layer-head, 1-based): </label><select id=\"seq-head\"></select> \
         <span class=\"meta\">Arcs: attention from a residue (top) to the residues it attends to; \
         width ∝ weight; weights below {floor} hidden. \
         <span class=\"key binding\">binding site</span> <span class=\"key ptm\">PTM</span> \
         <span class=\"key contact\">arc between residues in contact (Cα &lt; 8 Å)</span></span></p>\n\
         <div id=\"seq-arcs\" role=\"img\" aria-label=\"Attention arcs over the sequence\"></div>\n\
         <h2>Structure</h2>\n<p class=\"meta\" id=\"seq-3d-note\">Cα trace: drag or arrow keys to rotate, \
         wheel or +/− to zoom.</p>\n\
         <canvas id=\"seq-3d\" width=\"720\" height=\"520\" tabindex=\"0\" \
         aria-label=\"Cα trace with the head's attention; arrow keys rotate, plus and minus zoom\"></canvas>\n\
         <script src=\"../data.js\"></script>\n<script src=\"{stem}.js\"></script>\n\
         <script src=\"../ogl.min.js\"></script>\n\
         <script src=\"../report.js\"></script>\n</body>\n</html>\n",
        id = esc(&view.id),
        title = esc(title),
        n = view.sequence.chars().count(),
        floor = DISPLAY_FLOOR,
        stem = esc(stem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn stored_attention_becomes_the_chosen_heads_arcs_above_the_display_floor() {
        let record = ProteinRecord {
            id: "p".into(),
            sequence: "MKTAY".into(),
            ca_coords: Some((0..15).map(|v| v as f32).collect()),
            resolved: None,
            ss8: None,
            binding_sites: Some(vec![1, 7]),
            ptm_sites: None,
            sites: None,
            source: "test".into(),
        };
        let stored = SequenceAttention {
            id: "p".into(),
            residues: 4,
            layer: vec![0, 0, 1, 1],
            head: vec![0, 1, 0, 0],
            i: vec![0, 1, 2, 3],
            j: vec![1, 2, 3, 0],
            weight: vec![0.5, 0.9, 0.07, 0.3],
        };
        let heads: BTreeSet<(u32, u32)> = [(0, 0), (1, 0)].into();
        let views = views_from_stored(&[stored], &[record], &heads);
        assert_eq!(views.len(), 1);
        let v = &views[0];
        assert_eq!(
            (v.sequence.as_str(), v.ca.len(), v.binding_sites.clone()),
            ("MKTA", 12, vec![1])
        );
        assert_eq!(
            v.heads,
            vec![(0, 0, vec![(0, 1, 0.5)]), (1, 0, vec![(3, 0, 0.3)])]
        );
    }

    #[test]
    fn arcs_below_the_floor_are_dropped_and_the_rest_packed_in_order() {
        let p = packed(&[(2, 1, 0.5), (0, 3, 1.0), (1, 1, 0.05)]);
        // (0,3,255) then (2,1,128): 00 00 03 00 ff 02 00 01 00 80
        assert_eq!(p, base64(&[0, 0, 3, 0, 255, 2, 0, 1, 0, 128]));
    }
}
