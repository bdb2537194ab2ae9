//! The CPU path of one layer's sums: a single pass over the f32 attention
//! rows of each (sequence, head), heads in parallel (rayon), instead of the
//! tensor path's f64 copies of `[B, H, T, T]`. It computes exactly what the
//! tensor path of [`super::accumulate`] computes — per (sequence, head):
//! arcs, attention mass, Σ k_i², Σ_i (Σ_j α_ij² − m_i²/n), arcs per query
//! row, token-feature hits (thresholded and weighted) and the contact sums
//! with their closed-form null moments — summed in a fixed order, so it is
//! deterministic; it differs from the tensor path only in the rounding of
//! real sums (integer counts are equal).

use rayon::prelude::*;

/// One layer's sums, `[B, H]` (sequence-major) unless noted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerSums {
    /// High-confidence arcs (α ≥ θ between residues).
    pub arcs: Vec<f64>,
    /// Attention mass between residues.
    pub mass: Vec<f64>,
    /// Σ over query rows of (arcs in the row)².
    pub sum_k2: Vec<f64>,
    /// Σ over query rows of Σ_j α_ij² − (Σ_j α_ij)²/n.
    pub spread_w_sum: Vec<f64>,
    /// Arcs per query row, `[B, H, T]` (0 outside residues); empty when not asked.
    pub row_k: Vec<f64>,
    /// Token-feature hits `[B, H, F]`: thresholded, then weighted.
    pub token: Option<(Vec<f64>, Vec<f64>)>,
    /// Contact hits, weighted hits, null mean, null variance, weighted null
    /// mean and weighted null variance.
    pub contact: Option<[Vec<f64>; 6]>,
}

/// The host-side view of a batch the fused pass needs.
pub struct HostBatch<'a> {
    /// Sequences in the batch.
    pub b: usize,
    /// Heads.
    pub h: usize,
    /// Padded tokens.
    pub t: usize,
    /// Threshold θ.
    pub theta: f32,
    /// Token positions of each sequence's residues.
    pub positions: &'a [Vec<usize>],
    /// Token features `[B, T, F]` at token positions.
    pub g: &'a [f64],
    /// Token features per position.
    pub ft: usize,
    /// Contact map `[B, T, T]`, its row probabilities p_i `[B, T]` and q_i `[B, T]`.
    pub contact: Option<(&'a [f64], &'a [f64], &'a [f64])>,
    /// Fill [`LayerSums::row_k`].
    pub want_rows: bool,
}

/// One (sequence, head)'s sums.
#[derive(Default)]
struct HeadSums {
    arcs: f64,
    mass: f64,
    sum_k2: f64,
    spread: f64,
    row_k: Vec<f64>,
    token_hits: Vec<f64>,
    token_weighted: Vec<f64>,
    contact: [f64; 6],
}

fn head_sums(a: &[f32], hb: &HostBatch, k: usize) -> HeadSums {
    let t = hb.t;
    let pos = &hb.positions[k];
    let n = pos.len();
    let n_f = n as f64;
    let n_safe = n_f.max(1.0);
    let mut out = HeadSums {
        row_k: if hb.want_rows { vec![0.0; t] } else { Vec::new() },
        ..HeadSums::default()
    };
    let mut col_thr = vec![0u32; n];
    let mut col_mass = vec![0f64; n];
    for &i in pos {
        let row = &a[i * t..(i + 1) * t];
        let (mut ki, mut mi, mut s2) = (0u32, 0f64, 0f64);
        let (mut c_hits, mut c_weighted) = (0f64, 0f64);
        let crow = hb
            .contact
            .map(|(c, _, _)| &c[(k * t + i) * t..(k * t + i + 1) * t]);
        for (jx, &j) in pos.iter().enumerate() {
            let x = row[j];
            let xf = f64::from(x);
            let above = x >= hb.theta;
            mi += xf;
            s2 += xf * xf;
            col_mass[jx] += xf;
            if above {
                ki += 1;
                col_thr[jx] += 1;
            }
            if let Some(c) = crow {
                let cv = c[j];
                if above {
                    c_hits += cv;
                }
                c_weighted += xf * cv;
            }
        }
        let kf = f64::from(ki);
        let spread = s2 - mi * mi / n_safe;
        out.arcs += kf;
        out.mass += mi;
        out.sum_k2 += kf * kf;
        out.spread += spread;
        if hb.want_rows {
            out.row_k[i] = kf;
        }
        if let Some((_, p_row, q)) = hb.contact {
            let (p, q) = (p_row[k * t + i], q[k * t + i]);
            out.contact[0] += c_hits;
            out.contact[1] += c_weighted;
            out.contact[2] += kf * p;
            out.contact[3] += (kf * n_f - kf * kf) * q;
            out.contact[4] += mi * p;
            out.contact[5] += spread * q;
        }
    }
    out.contact[5] *= n_f;
    if hb.ft > 0 {
        out.token_hits = vec![0.0; hb.ft];
        out.token_weighted = vec![0.0; hb.ft];
        for (jx, &j) in pos.iter().enumerate() {
            let g = &hb.g[(k * t + j) * hb.ft..(k * t + j + 1) * hb.ft];
            let (k_col, m_col) = (f64::from(col_thr[jx]), col_mass[jx]);
            for ((hit, weighted), gc) in out.token_hits.iter_mut().zip(&mut out.token_weighted).zip(g) {
                *hit += k_col * gc;
                *weighted += m_col * gc;
            }
        }
    }
    out
}

/// The sums of one layer's attention `a` (`[B, H, T, T]`, contiguous f32).
pub fn layer_sums(a: &[f32], hb: &HostBatch) -> LayerSums {
    let (b, h, t) = (hb.b, hb.h, hb.t);
    let heads: Vec<HeadSums> = (0..b * h)
        .into_par_iter()
        .map(|bh| head_sums(&a[bh * t * t..(bh + 1) * t * t], hb, bh / h))
        .collect();
    let mut out = LayerSums {
        arcs: heads.iter().map(|s| s.arcs).collect(),
        mass: heads.iter().map(|s| s.mass).collect(),
        sum_k2: heads.iter().map(|s| s.sum_k2).collect(),
        spread_w_sum: heads.iter().map(|s| s.spread).collect(),
        ..LayerSums::default()
    };
    if hb.want_rows {
        out.row_k = heads.iter().flat_map(|s| s.row_k.iter().copied()).collect();
    }
    if hb.ft > 0 {
        out.token = Some((
            heads.iter().flat_map(|s| s.token_hits.iter().copied()).collect(),
            heads
                .iter()
                .flat_map(|s| s.token_weighted.iter().copied())
                .collect(),
        ));
    }
    if hb.contact.is_some() {
        out.contact = Some(std::array::from_fn(|m| {
            heads.iter().map(|s| s.contact[m]).collect()
        }));
    }
    out
}
