//! Pair features from one sequence's dense residue attention
//! (`[layers, heads, L, L]`, rows = queries, specials removed) for the
//! contact probes: the attention probe's per-layer weights in both
//! directions, and ESM's contact-regression features (each map symmetrised
//! and APC-corrected).

/// ESM's `apc(symmetrize(x))` applied to every `[L, L]` map of `values`
/// (`maps × L × L`): S = A + Aᵀ, then S_ij − (Σ_k S_ik)(Σ_k S_kj) / Σ_kl S_kl.
pub fn apc_symmetrised(values: &[f32], maps: usize, l: usize) -> Vec<f32> {
    let mut out = vec![0f32; maps * l * l];
    for m in 0..maps {
        let a = &values[m * l * l..(m + 1) * l * l];
        let s = &mut out[m * l * l..(m + 1) * l * l];
        for i in 0..l {
            for j in 0..l {
                s[i * l + j] = a[i * l + j] + a[j * l + i];
            }
        }
        let row: Vec<f64> = (0..l)
            .map(|i| s[i * l..(i + 1) * l].iter().map(|v| f64::from(*v)).sum())
            .collect();
        let total: f64 = row.iter().sum();
        if total == 0.0 {
            continue;
        }
        // S is symmetric: column sums equal row sums.
        for i in 0..l {
            for j in 0..l {
                s[i * l + j] = (f64::from(s[i * l + j]) - row[i] * row[j] / total) as f32;
            }
        }
    }
    out
}

/// The attention probe's features of pair (i, j) at `layer`: α_ij of every
/// head, then α_ji of every head (2 · heads values).
pub fn layer_pair_features(
    values: &[f32],
    layer: usize,
    heads: usize,
    l: usize,
    i: usize,
    j: usize,
    out: &mut Vec<f64>,
) {
    out.clear();
    for dir in [(i, j), (j, i)] {
        for h in 0..heads {
            let map = (layer * heads + h) * l * l;
            out.push(f64::from(values[map + dir.0 * l + dir.1]));
        }
    }
}

/// The contact regression's features of pair (i, j): the APC-corrected
/// symmetrised value of every layer × head map (`apc` from [`apc_symmetrised`]).
pub fn regression_features(apc: &[f32], maps: usize, l: usize, i: usize, j: usize, out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..maps).map(|m| f64::from(apc[m * l * l + i * l + j])));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apc_by_hand() {
        // One 2×2 map A = [[1, 2], [3, 4]] → S = [[2, 5], [5, 8]], row sums 7, 13, total 20.
        let s = apc_symmetrised(&[1.0, 2.0, 3.0, 4.0], 1, 2);
        let want = [
            2.0 - 49.0 / 20.0,
            5.0 - 91.0 / 20.0,
            5.0 - 91.0 / 20.0,
            8.0 - 169.0 / 20.0,
        ];
        for (a, b) in s.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{s:?}");
        }
        // APC leaves every row summing to 0.
        assert!((s[0] + s[1]).abs() < 1e-6);
    }

    #[test]
    fn features_pick_both_directions_and_every_map() {
        // 2 layers × 2 heads of 3×3, value = 1000·layer + 100·head + 10·i + j.
        let (layers, heads, l) = (2, 2, 3);
        let mut v = Vec::new();
        for la in 0..layers {
            for h in 0..heads {
                for i in 0..l {
                    for j in 0..l {
                        v.push((1000 * la + 100 * h + 10 * i + j) as f32);
                    }
                }
            }
        }
        let mut f = Vec::new();
        layer_pair_features(&v, 1, heads, l, 0, 2, &mut f);
        assert_eq!(f, vec![1002.0, 1102.0, 1020.0, 1120.0]);
        regression_features(&v, layers * heads, l, 0, 2, &mut f);
        assert_eq!(f, vec![2.0, 102.0, 1002.0, 1102.0]);
    }
}
