//! Partial counts: the reduction unit of an analysis job. Every shard yields
//! one [`PartialCounts`]; the coordinator folds them in shard order with
//! [`merge`], so the final numbers never depend on timing or worker count.

use crate::pb::{FeatureCounts, Fixed128, HeadCounts, PartialCounts};

/// 2^64: one unit of a [`Fixed128`] is 2^-64.
const SCALE: f64 = 18_446_744_073_709_551_616.0;

impl Fixed128 {
    /// The fixed-point number nearest to a finite `x` (|x| < 2^62); `None` otherwise.
    pub fn from_f64(x: f64) -> Option<Self> {
        (x.is_finite() && x.abs() < 4.6e18).then(|| Self::from_raw((x * SCALE).round() as i128))
    }

    /// From the raw 128-bit value (units of 2^-64).
    pub fn from_raw(v: i128) -> Self {
        Self {
            hi: (v >> 64) as i64,
            lo: v as u64,
        }
    }

    /// The raw 128-bit value (units of 2^-64).
    pub fn raw(&self) -> i128 {
        ((self.hi as i128) << 64) | self.lo as i128
    }

    /// The value as the nearest f64.
    pub fn to_f64(&self) -> f64 {
        self.raw() as f64 / SCALE
    }
}

/// The value of an optional fixed-point field (absent = 0).
pub fn real(x: &Option<Fixed128>) -> f64 {
    x.as_ref().map_or(0.0, Fixed128::to_f64)
}

/// Adds two optional fixed-point fields exactly (wrapping never happens below 2^63).
pub fn add_exact(into: &mut Option<Fixed128>, other: &Option<Fixed128>) {
    let sum = into
        .as_ref()
        .map_or(0, Fixed128::raw)
        .wrapping_add(other.as_ref().map_or(0, Fixed128::raw));
    *into = Some(Fixed128::from_raw(sum));
}

/// Errors merging partial counts of different shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The two partials describe different models, features or null sizes.
    #[error("cannot merge partial counts: {0}")]
    Shape(String),
}

/// Empty counts for a model shape, a feature list and K null samples (of the
/// thresholded hits; the weighted null is closed form only, so
/// `null_weighted_hits` stays empty).
pub fn empty(n_layers: u32, n_heads: u32, null_samples: u32, features: &[String]) -> PartialCounts {
    let head = HeadCounts {
        null_hits: vec![0; null_samples as usize],
        ..Default::default()
    };
    PartialCounts {
        n_layers,
        n_heads,
        null_samples,
        sequences: 0,
        residues: 0,
        features: features
            .iter()
            .map(|f| FeatureCounts {
                feature: f.clone(),
                background_hits: 0,
                background_total: 0,
                heads: vec![head.clone(); (n_layers * n_heads) as usize],
            })
            .collect(),
        visualized: Vec::new(),
    }
}

/// Adds `other` into `into` (counts add exactly; sums add in call order).
pub fn merge(into: &mut PartialCounts, other: &PartialCounts) -> Result<(), MergeError> {
    if (into.n_layers, into.n_heads, into.null_samples) != (other.n_layers, other.n_heads, other.null_samples)
    {
        return Err(MergeError::Shape(format!(
            "{}x{} heads with {} null samples vs {}x{} with {}",
            into.n_layers, into.n_heads, into.null_samples, other.n_layers, other.n_heads, other.null_samples
        )));
    }
    let names = |p: &PartialCounts| p.features.iter().map(|f| f.feature.clone()).collect::<Vec<_>>();
    if names(into) != names(other) {
        return Err(MergeError::Shape(format!(
            "features {:?} vs {:?}",
            names(into),
            names(other)
        )));
    }
    into.sequences += other.sequences;
    into.residues += other.residues;
    // Visualised records follow the fold: shard order, record order within a shard.
    into.visualized.extend(other.visualized.iter().cloned());
    for (a, b) in into.features.iter_mut().zip(&other.features) {
        if a.heads.len() != b.heads.len() {
            return Err(MergeError::Shape(format!(
                "feature {} has {} vs {} heads",
                a.feature,
                a.heads.len(),
                b.heads.len()
            )));
        }
        a.background_hits += b.background_hits;
        a.background_total += b.background_total;
        for (x, y) in a.heads.iter_mut().zip(&b.heads) {
            if x.null_hits.len() != y.null_hits.len() {
                return Err(MergeError::Shape(format!(
                    "feature {}: null sample counts differ",
                    a.feature
                )));
            }
            x.arcs += y.arcs;
            x.hits += y.hits;
            add_exact(&mut x.attn_mass, &y.attn_mass);
            add_exact(&mut x.weighted_hits, &y.weighted_hits);
            add_exact(&mut x.null_exact_mean, &y.null_exact_mean);
            add_exact(&mut x.null_exact_var, &y.null_exact_var);
            add_exact(&mut x.null_weighted_exact_mean, &y.null_weighted_exact_mean);
            add_exact(&mut x.null_weighted_exact_var, &y.null_weighted_exact_var);
            x.null_hits
                .iter_mut()
                .zip(&y.null_hits)
                .for_each(|(p, q)| *p += q);
        }
    }
    Ok(())
}

/// Folds partials in the order given (shard order) into one.
pub fn fold<'a>(
    mut partials: impl Iterator<Item = &'a PartialCounts>,
) -> Result<Option<PartialCounts>, MergeError> {
    let Some(first) = partials.next() else {
        return Ok(None);
    };
    let mut total = first.clone();
    for p in partials {
        merge(&mut total, p)?;
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64) -> PartialCounts {
        let mut p = empty(2, 3, 4, &["contact".into(), "aa:K".into()]);
        p.sequences = seed;
        p.residues = 10 * seed;
        for (k, f) in p.features.iter_mut().enumerate() {
            f.background_hits = seed + k as u64;
            f.background_total = 100 * seed;
            for (h, head) in f.heads.iter_mut().enumerate() {
                head.arcs = seed * 7 + h as u64;
                head.hits = seed * 3 + k as u64;
                head.attn_mass = Fixed128::from_f64(0.1 * seed as f64);
                head.weighted_hits = Fixed128::from_f64(0.3 * seed as f64 + h as f64);
                head.null_hits = vec![seed, seed + 1, seed + 2, h as u64];
                head.null_exact_mean = Fixed128::from_f64(1.7 * seed as f64);
                head.null_exact_var = Fixed128::from_f64(0.5);
                head.null_weighted_exact_mean = Fixed128::from_f64(0.2 * seed as f64 + h as f64);
                head.null_weighted_exact_var = Fixed128::from_f64(0.01 * seed as f64);
            }
        }
        p
    }

    #[test]
    fn merging_adds_and_is_associative_for_counts() {
        let (a, b, c) = (sample(1), sample(2), sample(5));
        let left = fold([&a, &b, &c].into_iter()).unwrap().unwrap();
        let mut bc = b.clone();
        merge(&mut bc, &c).unwrap();
        let right = fold([&a, &bc].into_iter()).unwrap().unwrap();
        assert_eq!(left, right, "fixed-point sums are exact, so both groupings agree");
        assert_eq!(left.sequences, 8);
        assert_eq!(left.features[1].heads[2].arcs, 8 * 7 + 3 * 2);
        assert_eq!(left.features[0].heads[0].null_hits, vec![8, 11, 14, 0]);
    }

    #[test]
    fn visualized_records_follow_the_fold_order() {
        let seq = |id: &str| crate::pb::SequenceAttention {
            id: id.into(),
            residues: 3,
            layer: vec![0],
            head: vec![1],
            i: vec![2],
            j: vec![0],
            weight: vec![0.5],
        };
        let (mut a, mut b, mut c) = (sample(1), sample(2), sample(3));
        a.visualized = vec![seq("a1"), seq("a2")];
        c.visualized = vec![seq("c1")];
        b.visualized.clear();
        let all = fold([&a, &b, &c].into_iter()).unwrap().unwrap();
        let ids: Vec<_> = all.visualized.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a1", "a2", "c1"]);
    }

    #[test]
    fn fixed_point_round_trips_and_sums_exactly() {
        let x = Fixed128::from_f64(-1234.5678).unwrap();
        assert!((x.to_f64() + 1234.5678).abs() < 1e-12);
        assert_eq!(Fixed128::from_f64(f64::NAN), None);
        // 0.1 + 0.2 + 0.3 in any grouping gives the same bits.
        let v: Vec<Option<Fixed128>> = [0.1, 0.2, 0.3].iter().map(|x| Fixed128::from_f64(*x)).collect();
        let (mut a, mut b) = (v[0], v[1]);
        add_exact(&mut a, &v[1]);
        add_exact(&mut a, &v[2]);
        add_exact(&mut b, &v[2]);
        let mut c = v[0];
        add_exact(&mut c, &b);
        assert_eq!(a, c);
    }

    #[test]
    fn shapes_must_agree() {
        let mut a = sample(1);
        let b = empty(2, 3, 5, &["contact".into(), "aa:K".into()]);
        assert!(merge(&mut a, &b).is_err());
        let c = empty(2, 3, 4, &["contact".into()]);
        assert!(merge(&mut a, &c).is_err());
        assert_eq!(fold(std::iter::empty()).unwrap(), None);
    }
}
