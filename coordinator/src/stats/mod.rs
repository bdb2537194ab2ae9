//! Statistics of DESIGN §1 over reduced partial counts: per-head proportions
//! with Bonferroni-corrected confidence intervals, z-tests against the
//! background, the null model, per-layer profiles, amino-acid attention
//! similarity vs BLOSUM62 and top heads.

use headscan_proto::counts::real;
use headscan_proto::pb::{FeatureCounts, HeadCounts, PartialCounts};
use serde::Serialize;

mod blosum;
mod normal;
#[cfg(test)]
mod tests;

/// Knobs of the statistics.
#[derive(Debug, Clone, Serialize)]
pub struct StatsOptions {
    /// Heads with fewer arcs are reported but excluded (default 100).
    pub min_arcs: u64,
    /// Family-wise significance level before Bonferroni (default 0.05).
    pub alpha: f64,
    /// Heads listed per feature in `top_heads` (default 10).
    pub top_k: usize,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            min_arcs: 100,
            alpha: 0.05,
            top_k: 10,
        }
    }
}

/// One row of `heads.parquet` (DESIGN §4); `layer` and `head` are 0-based.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadRow {
    /// Feature name (`contact`, `ss4:helix`, `aa:K`, …).
    pub feature: String,
    /// 0-based layer.
    pub layer: u32,
    /// 0-based head.
    pub head: u32,
    /// High-confidence arcs (α ≥ θ).
    pub arcs: u64,
    /// Arcs where the feature holds.
    pub hits: u64,
    /// hits / arcs (NaN when arcs = 0).
    pub proportion: f64,
    /// Σ α.
    pub attn_mass: f64,
    /// Σ f·α.
    pub weighted_hits: f64,
    /// weighted_hits / attn_mass (NaN when attn_mass = 0).
    pub weighted_proportion: f64,
    /// Positions or pairs where the feature holds.
    pub background_hits: u64,
    /// Valid positions or pairs.
    pub background_total: u64,
    /// background_hits / background_total (NaN when background_total = 0).
    pub background_rate: f64,
    /// proportion / background_rate, IEEE division: +∞ when the rate is 0 and proportion > 0, NaN for 0/0.
    pub enrichment: f64,
    /// Bonferroni-corrected (α/m) normal-approximation CI, lower bound, clipped to [0, 1] as statsmodels.
    pub ci_low: f64,
    /// Upper bound (both bounds NaN when arcs = 0).
    pub ci_high: f64,
    /// Pooled two-proportion z statistic, head vs background (NaN when undefined, e.g. pooled rate 0).
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
    /// p_value < alpha / m and not excluded.
    pub significant: bool,
    /// arcs < min_arcs.
    pub excluded: bool,
    /// Mean of the null proportions (null hits / arcs).
    pub null_mean: f64,
    /// Population standard deviation (ddof = 0) of the null proportions.
    pub null_std: f64,
    /// (1 + #{null hits ≥ hits}) / (K + 1); NaN when K = 0.
    pub null_p_value: f64,
    /// Closed-form null mean of the proportion.
    pub null_mean_exact: f64,
    /// Closed-form null standard deviation of the proportion (a negative variance from rounding counts as 0).
    pub null_std_exact: f64,
    /// Closed-form null mean of the weighted proportion: the exact mean of the
    /// row-permutation null of `weighted_hits`, divided by `attn_mass` (which
    /// the permutation preserves), so it is on the scale of `weighted_proportion`.
    pub null_weighted_mean_exact: f64,
    /// Closed-form null standard deviation of the weighted proportion (same scale; a negative variance from rounding counts as 0).
    pub null_weighted_std_exact: f64,
    /// (weighted_proportion − null_weighted_mean_exact) / null_weighted_std_exact,
    /// the same as on the weighted-hits scale; NaN when the std is 0 or undefined.
    pub null_weighted_z: f64,
}

/// One row of `layers.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    /// Feature name.
    pub feature: String,
    /// 0-based layer.
    pub layer: u32,
    /// Macro mean of `proportion` over the layer's non-excluded heads (NaN when there are none).
    pub mean_proportion: f64,
    /// Max of `proportion` over the layer's non-excluded heads (NaN when none; NaN-propagating).
    pub max_proportion: f64,
    /// Non-excluded heads in the layer.
    pub heads_included: u32,
}

/// One row of `null.parquet`: the K samples of one head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NullRow {
    /// Feature name.
    pub feature: String,
    /// 0-based layer.
    pub layer: u32,
    /// 0-based head.
    pub head: u32,
    /// Sample index.
    pub sample: u32,
    /// Null hits.
    pub hits: u64,
}

/// One row of `aa_similarity.parquet` (pairs of the 20 amino acids, a < b).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AaSimilarityRow {
    /// First amino acid (one letter).
    pub aa_a: String,
    /// Second amino acid.
    pub aa_b: String,
    /// Pearson r of the two `aa:*` proportion vectors across heads non-excluded in both (NaN if constant or < 2 heads).
    pub attention_r: f64,
    /// BLOSUM62 score.
    pub blosum62: f64,
}

/// A head named in `top_heads`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopHead {
    /// 0-based layer.
    pub layer: u32,
    /// 0-based head.
    pub head: u32,
    /// Its proportion.
    pub proportion: f64,
    /// Its CI.
    pub ci_low: f64,
    /// Its CI.
    pub ci_high: f64,
}

/// Per-feature summary for `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSummary {
    /// Feature name.
    pub feature: String,
    /// Background rate.
    pub background_rate: f64,
    /// Σ_l l·w_l / Σ_l w_l over layer means (0-based layers; layers without included heads are skipped; NaN when Σ w_l = 0).
    pub center_of_gravity: f64,
    /// Heads with arcs ≥ min_arcs (the Bonferroni m).
    pub heads_included: u32,
    /// Significant heads.
    pub heads_significant: u32,
    /// Best non-excluded heads by proportion, descending; ties by (layer, head) ascending; NaN proportions omitted.
    pub top_heads: Vec<TopHead>,
}

/// Everything the statistics produce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisResults {
    /// Layers of the model.
    pub n_layers: u32,
    /// Heads per layer.
    pub n_heads: u32,
    /// Sequences analysed.
    pub sequences: u64,
    /// Residues analysed.
    pub residues: u64,
    /// heads.parquet rows, feature-major then layer, head.
    pub heads: Vec<HeadRow>,
    /// layers.parquet rows.
    pub layers: Vec<LayerRow>,
    /// null.parquet rows.
    pub null: Vec<NullRow>,
    /// aa_similarity.parquet rows (empty unless all 20 `aa:*` features were computed).
    pub aa_similarity: Vec<AaSimilarityRow>,
    /// Pearson r between attention_r and BLOSUM62 over the pairs with a defined
    /// attention_r (None without all 20 `aa:*` features).
    pub blosum62_pearson_r: Option<f64>,
    /// Per-feature summaries.
    pub features: Vec<FeatureSummary>,
}

/// Computes every statistic from reduced counts (DESIGN §1); never panics.
///
/// Heads are read in layer-major order (index = layer·n_heads + head); a
/// feature holding more than n_layers·n_heads heads has the extra ones ignored,
/// one holding fewer simply lacks the missing heads. Features keep their input
/// order. Each feature's Bonferroni m counts its heads with arcs ≥ min_arcs;
/// when m = 0 the intervals use α itself.
pub fn compute(counts: &PartialCounts, options: &StatsOptions) -> AnalysisResults {
    let n_layers = counts.n_layers;
    let n_heads = counts.n_heads;
    let shape = (n_layers as usize).saturating_mul(n_heads as usize);
    let mut results = AnalysisResults {
        n_layers,
        n_heads,
        sequences: counts.sequences,
        residues: counts.residues,
        heads: Vec::new(),
        layers: Vec::new(),
        null: Vec::new(),
        aa_similarity: Vec::new(),
        blosum62_pearson_r: None,
        features: Vec::with_capacity(counts.features.len()),
    };
    // Where each feature's rows start in `results.heads`.
    let mut starts = Vec::with_capacity(counts.features.len());
    for feature in &counts.features {
        let start = results.heads.len();
        starts.push(start);
        let heads = &feature.heads[..feature.heads.len().min(shape)];
        head_rows(feature, heads, n_heads, options, &mut results.heads);
        let rows = &results.heads[start..];
        for (row, counts) in rows.iter().zip(heads) {
            results.null.extend(null_rows(row, counts));
        }
        let layers = layer_rows(&feature.feature, rows, n_layers);
        results.features.push(FeatureSummary {
            feature: feature.feature.clone(),
            background_rate: ratio(feature.background_hits, feature.background_total),
            center_of_gravity: center_of_gravity(&layers),
            heads_included: count_u32(rows.iter().filter(|r| !r.excluded).count()),
            heads_significant: count_u32(rows.iter().filter(|r| r.significant).count()),
            top_heads: top_heads(rows, options.top_k),
        });
        results.layers.extend(layers);
    }
    let ranges: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(results.heads.len())))
        .collect();
    if let Some((rows, r)) = aa_similarity(counts, &results.heads, &ranges) {
        results.aa_similarity = rows;
        results.blosum62_pearson_r = Some(r);
    }
    results
}

/// a / b in floating point (NaN for 0/0, +∞ for a > 0 = b).
fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

/// A count as u32, saturating.
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// statsmodels `proportion_confint(count, nobs, alpha, method="normal")` with `z = norm.isf(alpha / 2)`.
fn normal_ci(count: u64, nobs: u64, z: f64) -> (f64, f64) {
    let q = ratio(count, nobs);
    let std = (q * (1.0 - q) / nobs as f64).sqrt();
    let dist = z * std;
    ((q - dist).clamp(0.0, 1.0), (q + dist).clamp(0.0, 1.0))
}

/// statsmodels `proportions_ztest([c1, c2], [n1, n2])`: pooled, two-sided; (z, p).
fn two_proportion_ztest(c1: u64, n1: u64, c2: u64, n2: u64) -> (f64, f64) {
    let diff = ratio(c1, n1) - ratio(c2, n2);
    let pooled = (u128::from(c1) + u128::from(c2)) as f64 / (u128::from(n1) + u128::from(n2)) as f64;
    let nobs_fact = 1.0 / n1 as f64 + 1.0 / n2 as f64;
    let var = pooled * (1.0 - pooled) * nobs_fact;
    let z = diff / var.sqrt();
    (z, normal::norm_sf(z.abs()) * 2.0)
}

/// Mean and population standard deviation (ddof = 0), two-pass; NaN for no values.
fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The heads.parquet rows of one feature, appended to `out`.
fn head_rows(
    feature: &FeatureCounts,
    heads: &[HeadCounts],
    n_heads: u32,
    options: &StatsOptions,
    out: &mut Vec<HeadRow>,
) {
    let m = heads.iter().filter(|h| h.arcs >= options.min_arcs).count();
    let alpha_m = options.alpha / m.max(1) as f64;
    let z_crit = normal::norm_isf(alpha_m / 2.0);
    let background_rate = ratio(feature.background_hits, feature.background_total);
    let n_heads = n_heads.max(1) as usize;
    for (index, h) in heads.iter().enumerate() {
        let excluded = h.arcs < options.min_arcs;
        let proportion = ratio(h.hits, h.arcs);
        let (ci_low, ci_high) = normal_ci(h.hits, h.arcs, z_crit);
        let (z, p_value) =
            two_proportion_ztest(h.hits, h.arcs, feature.background_hits, feature.background_total);
        let null_props: Vec<f64> = h.null_hits.iter().map(|&n| ratio(n, h.arcs)).collect();
        let (null_mean, null_std) = mean_std(&null_props);
        let k = h.null_hits.len();
        let null_p_value = if k == 0 {
            f64::NAN
        } else {
            (1 + h.null_hits.iter().filter(|&&n| n >= h.hits).count()) as f64 / (k + 1) as f64
        };
        let (attn_mass, weighted_hits) = (real(&h.attn_mass), real(&h.weighted_hits));
        let exact_var = real(&h.null_exact_var).max(0.0);
        let weighted_proportion = weighted_hits / attn_mass;
        let (w_mean, w_std) = (
            real(&h.null_weighted_exact_mean) / attn_mass,
            real(&h.null_weighted_exact_var).max(0.0).sqrt() / attn_mass,
        );
        out.push(HeadRow {
            feature: feature.feature.clone(),
            layer: count_u32(index / n_heads),
            head: count_u32(index % n_heads),
            arcs: h.arcs,
            hits: h.hits,
            proportion,
            attn_mass,
            weighted_hits,
            weighted_proportion,
            background_hits: feature.background_hits,
            background_total: feature.background_total,
            background_rate,
            enrichment: proportion / background_rate,
            ci_low,
            ci_high,
            z,
            p_value,
            significant: !excluded && p_value < alpha_m,
            excluded,
            null_mean,
            null_std,
            null_p_value,
            null_mean_exact: real(&h.null_exact_mean) / h.arcs as f64,
            null_std_exact: exact_var.sqrt() / h.arcs as f64,
            null_weighted_mean_exact: w_mean,
            null_weighted_std_exact: w_std,
            null_weighted_z: z_score(weighted_proportion, w_mean, w_std),
        });
    }
}

/// (observed − mean) / std, NaN unless std is finite and positive.
fn z_score(observed: f64, mean: f64, std: f64) -> f64 {
    if std.is_finite() && std > 0.0 {
        (observed - mean) / std
    } else {
        f64::NAN
    }
}

/// The null.parquet rows of one head: one per thresholded sample.
fn null_rows<'a>(row: &'a HeadRow, counts: &'a HeadCounts) -> impl Iterator<Item = NullRow> + 'a {
    counts
        .null_hits
        .iter()
        .enumerate()
        .map(move |(k, &hits)| NullRow {
            feature: row.feature.clone(),
            layer: row.layer,
            head: row.head,
            sample: count_u32(k),
            hits,
        })
}

/// The layers.parquet rows of one feature.
fn layer_rows(feature: &str, rows: &[HeadRow], n_layers: u32) -> Vec<LayerRow> {
    // Included proportions per layer, in head order (rows never exceed n_layers).
    let mut per_layer: Vec<Vec<f64>> = vec![Vec::new(); rows.last().map_or(0, |r| r.layer as usize + 1)];
    for r in rows.iter().filter(|r| !r.excluded) {
        per_layer[r.layer as usize].push(r.proportion);
    }
    (0..n_layers)
        .map(|layer| {
            let props = per_layer.get(layer as usize).map_or(&[][..], Vec::as_slice);
            let (mean, max) = if props.is_empty() || props.iter().any(|p| p.is_nan()) {
                (f64::NAN, f64::NAN)
            } else {
                let mean = props.iter().sum::<f64>() / props.len() as f64;
                (mean, props.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            };
            LayerRow {
                feature: feature.to_string(),
                layer,
                mean_proportion: mean,
                max_proportion: max,
                heads_included: count_u32(props.len()),
            }
        })
        .collect()
}

/// Σ_l l·w_l / Σ_l w_l over the layers that have included heads.
fn center_of_gravity(layers: &[LayerRow]) -> f64 {
    let (moment, total) = layers
        .iter()
        .filter(|l| l.heads_included > 0)
        .fold((0.0, 0.0), |(m, t), l| {
            (m + f64::from(l.layer) * l.mean_proportion, t + l.mean_proportion)
        });
    moment / total
}

/// The `top_k` best non-excluded heads of one feature.
fn top_heads(rows: &[HeadRow], top_k: usize) -> Vec<TopHead> {
    let mut best: Vec<&HeadRow> = rows
        .iter()
        .filter(|r| !r.excluded && !r.proportion.is_nan())
        .collect();
    best.sort_by(|a, b| {
        b.proportion
            .total_cmp(&a.proportion)
            .then(a.layer.cmp(&b.layer))
            .then(a.head.cmp(&b.head))
    });
    best.into_iter()
        .take(top_k)
        .map(|r| TopHead {
            layer: r.layer,
            head: r.head,
            proportion: r.proportion,
            ci_low: r.ci_low,
            ci_high: r.ci_high,
        })
        .collect()
}

/// Pearson r as scipy's `pearsonr`: NaN for fewer than 2 points, NaN values or a constant input.
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    if x.iter().all(|&v| v == x[0]) || y.iter().all(|&v| v == y[0]) {
        return f64::NAN;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    // clamp keeps NaN.
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// The amino-acid similarity rows and their Pearson r with BLOSUM62, when all
/// 20 `aa:X` features are present (the first feature of each name counts).
fn aa_similarity(
    counts: &PartialCounts,
    heads: &[HeadRow],
    ranges: &[(usize, usize)],
) -> Option<(Vec<AaSimilarityRow>, f64)> {
    let mut per_aa: Vec<&[HeadRow]> = Vec::with_capacity(20);
    for aa in blosum::ORDER {
        let name = format!("aa:{aa}");
        let index = counts.features.iter().position(|f| f.feature == name)?;
        let (start, end) = ranges[index];
        per_aa.push(&heads[start..end]);
    }
    let mut rows = Vec::with_capacity(190);
    for i in 0..20 {
        for j in (i + 1)..20 {
            let (xs, ys): (Vec<f64>, Vec<f64>) = per_aa[i]
                .iter()
                .zip(per_aa[j])
                .filter(|(a, b)| !a.excluded && !b.excluded)
                .map(|(a, b)| (a.proportion, b.proportion))
                .unzip();
            rows.push(AaSimilarityRow {
                aa_a: blosum::ORDER[i].to_string(),
                aa_b: blosum::ORDER[j].to_string(),
                attention_r: pearson(&xs, &ys),
                blosum62: f64::from(blosum::BLOSUM62[i][j]),
            });
        }
    }
    // Pairs whose attention r is undefined (a constant proportion vector) are
    // left out of the BLOSUM62 correlation rather than making it NaN.
    let (attention, scores): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter(|r| r.attention_r.is_finite())
        .map(|r| (r.attention_r, r.blosum62))
        .unzip();
    let r = pearson(&attention, &scores);
    Some((rows, r))
}
