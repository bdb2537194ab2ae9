//! Tests of the whole report on hand-built results: files written, links in
//! the HTML, PNG structure and dimensions, SVG well-formedness, determinism
//! and degenerate inputs.

use std::collections::BTreeSet;
use std::path::Path;

use super::scene::{HATCH_FG, NO_DATA};
use super::{ReportContext, ReportError, safe_stem, unique_stems, write_report};
use crate::stats::{AaSimilarityRow, AnalysisResults, FeatureSummary, HeadRow, LayerRow, TopHead};

const AA: &str = "ACDEFGHIKLMNPQRSTVWY";

fn head(feature: &str, layer: u32, head: u32, arcs: u64, hits: u64, min_arcs: u64) -> HeadRow {
    let proportion = if arcs == 0 {
        f64::NAN
    } else {
        hits as f64 / arcs as f64
    };
    HeadRow {
        feature: feature.to_string(),
        layer,
        head,
        arcs,
        hits,
        proportion,
        attn_mass: arcs as f64 * 1.5,
        weighted_hits: hits as f64,
        weighted_proportion: proportion,
        background_hits: 100,
        background_total: 1000,
        background_rate: 0.1,
        enrichment: proportion / 0.1,
        ci_low: (proportion - 0.05).max(0.0),
        ci_high: (proportion + 0.05).min(1.0),
        z: 2.0,
        p_value: 0.01,
        significant: proportion > 0.3 && arcs >= min_arcs,
        excluded: arcs < min_arcs,
        null_mean: 0.1,
        null_std: 0.01,
        null_p_value: 0.01,
        null_mean_exact: 0.1,
        null_std_exact: 0.01,
        null_weighted_mean_exact: 0.1,
        null_weighted_std_exact: 0.01,
        null_weighted_z: 0.0,
    }
}

fn top(rows: &[HeadRow]) -> Vec<TopHead> {
    let mut best: Vec<&HeadRow> = rows
        .iter()
        .filter(|h| !h.excluded && h.proportion.is_finite())
        .collect();
    best.sort_by(|a, b| b.proportion.total_cmp(&a.proportion));
    best.iter()
        .take(5)
        .map(|h| TopHead {
            layer: h.layer,
            head: h.head,
            proportion: h.proportion,
            ci_low: h.ci_low,
            ci_high: h.ci_high,
        })
        .collect()
}

/// 2 features (one with ':'), 3 layers × 4 heads, an excluded head, a NaN proportion.
fn small_results() -> AnalysisResults {
    let min_arcs = 100;
    let mut heads = Vec::new();
    for feature in ["contact", "ss4:helix"] {
        for l in 0..3 {
            for h in 0..4 {
                let mut arcs = 200 + 10 * (l * 4 + h) as u64;
                let hits = (arcs as f64 * (0.05 + 0.07 * (l * 4 + h) as f64 / 2.0).min(0.95)) as u64;
                if feature == "contact" && (l, h) == (1, 2) {
                    arcs = 40; // excluded
                }
                heads.push(head(feature, l, h, arcs, hits.min(arcs), min_arcs));
            }
        }
    }
    // ss4:helix head 3-4 (0-based 2, 3): no arcs, NaN proportion, excluded; head 2-1: NaN but included.
    let nan_excluded = heads
        .iter_mut()
        .find(|h| h.feature == "ss4:helix" && h.layer == 2 && h.head == 3)
        .unwrap();
    *nan_excluded = head("ss4:helix", 2, 3, 0, 0, min_arcs);
    let nan_included = heads
        .iter_mut()
        .find(|h| h.feature == "ss4:helix" && h.layer == 1 && h.head == 0)
        .unwrap();
    nan_included.proportion = f64::NAN;
    nan_included.ci_low = f64::NAN;
    nan_included.ci_high = f64::NAN;

    let layers = (0..3)
        .map(|l| {
            let props: Vec<f64> = heads
                .iter()
                .filter(|h| h.feature == "contact" && h.layer == l && !h.excluded)
                .map(|h| h.proportion)
                .collect();
            LayerRow {
                feature: "contact".into(),
                layer: l,
                mean_proportion: props.iter().sum::<f64>() / props.len() as f64,
                max_proportion: props.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                heads_included: props.len() as u32,
            }
        })
        .collect();
    let summary = |feature: &str, cog: f64| {
        let rows: Vec<HeadRow> = heads.iter().filter(|h| h.feature == feature).cloned().collect();
        FeatureSummary {
            feature: feature.into(),
            background_rate: 0.1,
            center_of_gravity: cog,
            heads_included: rows.iter().filter(|h| !h.excluded).count() as u32,
            heads_significant: rows.iter().filter(|h| h.significant).count() as u32,
            top_heads: top(&rows),
        }
    };
    let features = vec![summary("contact", 1.3), summary("ss4:helix", f64::NAN)];
    AnalysisResults {
        n_layers: 3,
        n_heads: 4,
        sequences: 12,
        residues: 3456,
        heads,
        layers,
        null: Vec::new(),
        aa_similarity: Vec::new(),
        blosum62_pearson_r: None,
        features,
    }
}

/// The small results plus 190 amino-acid similarity rows.
fn aa_results() -> AnalysisResults {
    let mut r = small_results();
    let aas: Vec<char> = AA.chars().collect();
    for i in 0..aas.len() {
        for j in i + 1..aas.len() {
            r.aa_similarity.push(AaSimilarityRow {
                aa_a: aas[i].to_string(),
                aa_b: aas[j].to_string(),
                attention_r: ((i * 7 + j * 3) % 21) as f64 / 10.0 - 1.0,
                blosum62: ((i + 2 * j) % 9) as f64 - 4.0,
            });
        }
    }
    assert_eq!(r.aa_similarity.len(), 190);
    r.blosum62_pearson_r = Some(0.6234);
    r
}

fn context() -> ReportContext {
    ReportContext {
        title: "ProtBert on <test> & friends".into(),
        notes: vec!["random model: background-level alignment expected".into()],
        threshold: 0.3,
        min_arcs: 100,
        ..Default::default()
    }
}

fn names(files: &[std::path::PathBuf], dir: &Path) -> Vec<String> {
    files
        .iter()
        .map(|f| f.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Every `src="…"` and `href="…"` value in the HTML.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("unterminated attribute");
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// Decodes one of our PNGs with the `png` crate (which checks every chunk CRC):
/// 8-bit RGB only; returns (width, height, pixels).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("valid image data");
    assert_eq!(
        (info.color_type, info.bit_depth),
        (::png::ColorType::Rgb, ::png::BitDepth::Eight)
    );
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// The `width`/`height` attributes of the root `<svg>` element.
fn svg_size(svg: &str) -> (f64, f64) {
    let head = &svg[..svg.find('>').unwrap()];
    let attr = |name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let i = head.find(&key).unwrap() + key.len();
        head[i..i + head[i..].find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

/// Checks that tags are balanced and properly nested, and that no raw `&`/`<` appears in text.
fn assert_well_formed(doc: &str) {
    let doc = doc.trim_end();
    assert!(doc.starts_with("<svg"), "must start with <svg");
    assert!(doc.ends_with("</svg>"), "must end with </svg>");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = doc;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "stray '>' in {text:?}");
        for (i, _) in text.match_indices('&') {
            let tail = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| tail.starts_with(e)),
                "raw & in {text:?}"
            );
        }
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

/// Checks every output of a report directory; returns the file names.
fn check_report(dir: &Path, files: &[std::path::PathBuf]) -> Vec<String> {
    let listed = names(files, dir);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "files must be returned sorted");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, listed.iter().cloned().collect::<BTreeSet<_>>());
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for page in ["index.html", "head.html"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{page} names a remote resource"
        );
        assert_eq!(
            text.matches("<script").count(),
            2,
            "{page}: only data.js and report.js"
        );
        for r in references(&text) {
            if r.starts_with("#feature=") {
                continue; // handled by report.js
            } else if let Some(id) = r.strip_prefix('#') {
                assert!(text.contains(&format!("id=\"{id}\"")), "dangling anchor {r}");
            } else {
                let file = r.split('#').next().unwrap();
                assert!(
                    !file.contains('/') && !file.contains(':'),
                    "not a local file: {r}"
                );
                assert!(dir.join(file).is_file(), "{page} references missing {r}");
            }
        }
    }
    for name in &listed {
        let path = dir.join(name);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            "unsafe file name {name}"
        );
        if name.ends_with(".svg") && path.with_extension("png").is_file() {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert_well_formed(&svg);
            assert!(!svg.contains("NaN"), "{name} has non-finite numbers");
            let png = std::fs::read(path.with_extension("png")).unwrap();
            let (w, h, _) = decode_png(&png);
            let (sw, sh) = svg_size(&svg);
            assert_eq!(
                (w, h),
                ((sw * 2.0).ceil() as usize, (sh * 2.0).ceil() as usize),
                "{name}"
            );
            assert!(html.contains(&format!("src=\"{name}\"")), "{name} is not shown");
        }
    }
    listed
}

#[test]
fn writes_every_figure_and_an_index_that_links_only_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let files = write_report(&aa_results(), &context(), &out).unwrap();
    let listed = check_report(&out, &files);
    let expected = [
        "aa_similarity.png",
        "aa_similarity.svg",
        "data.js",
        "head.html",
        "heatmap_contact.png",
        "heatmap_contact.svg",
        "heatmap_ss4-helix.png",
        "heatmap_ss4-helix.svg",
        "index.html",
        "layers_contact.png",
        "layers_contact.svg",
        "layers_ss4-helix.png",
        "layers_ss4-helix.svg",
        "report.css",
        "report.js",
        "top_heads_contact.png",
        "top_heads_contact.svg",
        "top_heads_ss4-helix.png",
        "top_heads_ss4-helix.svg",
    ];
    assert_eq!(listed, expected);

    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("ProtBert on &lt;test&gt; &amp; friends"));
    assert!(html.contains("random model: background-level alignment expected"));
    assert!(html.contains("0.623"), "BLOSUM62 r in the HTML");
    assert!(html.contains("<td>ss4:helix</td>") || html.contains(">ss4:helix</a>"));
    let top = &aa_results().features[0].top_heads[0];
    assert!(html.contains(&format!("{}-{}", top.layer + 1, top.head + 1)));

    let heat = std::fs::read_to_string(out.join("heatmap_contact.svg")).unwrap();
    assert!(heat.contains("url(#hatch)"), "excluded head hatched");
    assert!(heat.contains("Layer max"));
    assert!(heat.contains("excluded (arcs &lt; 100)"));
    let top_svg = std::fs::read_to_string(out.join("top_heads_contact.svg")).unwrap();
    assert!(top_svg.contains("stroke-dasharray"), "background line");
    assert!(top_svg.contains(&format!(">{}-{}<", top.layer + 1, top.head + 1)));
    let aa = std::fs::read_to_string(out.join("aa_similarity.svg")).unwrap();
    assert!(aa.contains("Pearson r = 0.623"));
    assert!(aa.matches("<rect").count() >= 2 * 400);

    // The heatmap PNG shows the hatching and the grey NaN cell.
    let (_, _, px) = decode_png(&std::fs::read(out.join("heatmap_ss4-helix.png")).unwrap());
    let has = |c: super::scene::Rgb| px.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]);
    assert!(has(HATCH_FG) && has(NO_DATA));
}

#[test]
fn same_input_gives_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fa = write_report(&aa_results(), &context(), a.path()).unwrap();
    let fb = write_report(&aa_results(), &context(), b.path()).unwrap();
    assert_eq!(names(&fa, a.path()), names(&fb, b.path()));
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
    // Writing again over the same directory is fine and gives the same files.
    let again = write_report(&aa_results(), &context(), a.path()).unwrap();
    assert_eq!(again, fa);
}

#[test]
fn degenerate_results_still_give_a_valid_report() {
    let empty = AnalysisResults {
        n_layers: 0,
        n_heads: 0,
        sequences: 0,
        residues: 0,
        heads: Vec::new(),
        layers: Vec::new(),
        null: Vec::new(),
        aa_similarity: Vec::new(),
        blosum62_pearson_r: None,
        features: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&empty, &ReportContext::default(), dir.path()).unwrap();
    assert_eq!(
        check_report(dir.path(), &files),
        ["data.js", "head.html", "index.html", "report.css", "report.js"]
    );

    // A feature summary without any heads, zero heads per layer.
    let mut no_heads = empty.clone();
    no_heads.n_layers = 2;
    no_heads.features.push(FeatureSummary {
        feature: "site:metal".into(),
        background_rate: f64::NAN,
        center_of_gravity: f64::NAN,
        heads_included: 0,
        heads_significant: 0,
        top_heads: Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&no_heads, &ReportContext::default(), dir.path()).unwrap();
    assert!(check_report(dir.path(), &files).contains(&"heatmap_site-metal.svg".to_string()));

    // A single layer, NaN proportions, a head beyond the declared grid, no summaries, odd names.
    let mut one_layer = empty.clone();
    one_layer.n_layers = 1;
    one_layer.n_heads = 2;
    for h in 0..3 {
        one_layer.heads.push(head("site:<b>&\"x\"", 0, h, 0, 0, 100));
        let mut nan = head("aa:K", 0, h, 500, 100, 100);
        nan.proportion = f64::NAN;
        one_layer.heads.push(nan);
    }
    one_layer.heads.push(head("aa:K", 0, 0, 500, 100, 100));
    one_layer.heads.push(head("ptm", 0, 1, 500, 500, 100));
    one_layer.aa_similarity.push(AaSimilarityRow {
        aa_a: "A".into(),
        aa_b: "<".into(),
        attention_r: f64::NAN,
        blosum62: f64::INFINITY,
    });
    let ctx = ReportContext {
        title: String::new(),
        notes: vec!["".into(), "<b>".into()],
        threshold: f64::NAN,
        min_arcs: 0,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&one_layer, &ctx, dir.path()).unwrap();
    let listed = check_report(dir.path(), &files);
    assert!(
        listed.contains(&"heatmap_site-_b___x_.svg".to_string()),
        "{listed:?}"
    );
    assert!(listed.contains(&"aa_similarity.png".to_string()));
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("site:&lt;b&gt;&amp;&quot;x&quot;") && html.contains("<li>&lt;b&gt;</li>"));
}

#[test]
fn many_layers_and_heads_stay_readable_and_bounded() {
    let mut r = small_results();
    r.n_layers = 48;
    r.n_heads = 40;
    for l in 0..48 {
        for h in 0..40 {
            r.heads
                .push(head("contact", l, h, 1000, (l * 40 + h) as u64 % 1000, 100));
        }
    }
    r.heads.push(head("contact", 5000, 0, 1000, 10, 100)); // beyond MAX_GRID: left out, not drawn
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&r, &context(), dir.path()).unwrap();
    check_report(dir.path(), &files);
    let svg = std::fs::read_to_string(dir.path().join("heatmap_contact.svg")).unwrap();
    assert!(svg.contains("head rows outside the"));
}

#[test]
fn unwritable_directory_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    match write_report(&small_results(), &context(), &file.join("report")) {
        Err(ReportError::Io { path, .. }) => assert!(path.contains("not-a-dir"), "{path}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn stems_are_safe_stable_and_distinct() {
    assert_eq!(safe_stem("ss4:helix"), "ss4-helix");
    assert_eq!(safe_stem("aa:K"), "aa-K");
    assert_eq!(safe_stem("site:metal binding/x"), "site-metal_binding_x");
    assert_eq!(safe_stem(".."), "_.");
    assert_eq!(safe_stem(""), "feature");
    assert_eq!(safe_stem(&"x".repeat(500)).len(), 64);
    let stems = unique_stems(["a:b", "a-b", "A:B", "a:b2"].into_iter());
    assert_eq!(stems[0], "a-b");
    assert_eq!(stems[3], "a-b2");
    let set: BTreeSet<String> = stems.iter().map(|s| s.to_ascii_lowercase()).collect();
    assert_eq!(set.len(), 4, "{stems:?}");
    assert_eq!(stems, unique_stems(["a:b", "a-b", "A:B", "a:b2"].into_iter()));
}
