//! On-device accumulation of per-head counts (DESIGN §1) for one batch.
//!
//! For every layer, with A the attention `[B, H, T, T]`, R the residue mask
//! (specials and padding removed, rows not renormalised), G the token-feature
//! matrix `[B, T, F]` and C the contact map `[B, T, T]`:
//! arcs = Σ 1[A ≥ θ]·R_i·R_j; token hits = (Σ_i 1[A ≥ θ]) · G; weighted
//! hits = (Σ_i A) · G; contact hits = Σ 1[A ≥ θ] ⊙ C. Only `[B, H]` and
//! `[B, H, F]` arrays come back to the host, where sequences are added in
//! batch order with the closed-form (hypergeometric) null moments.

use candle_core::{DType, Device, Tensor};
use headscan_proto::counts;
use headscan_proto::pb::{Fixed128, PartialCounts};

use super::features::{FeatureKind, FeatureSpec, RecordFeatures, token_features};
use super::fused::{HostBatch, LayerSums, layer_sums};
use super::null::NullStream;
use crate::tokenizer::Encoded;
use rayon::prelude::*;

/// One sequence of a batch: its tokens and its feature values.
#[derive(Debug, Clone, Copy)]
pub struct SequenceInput<'a> {
    /// Tokens as the model saw them (specials marked).
    pub encoded: &'a Encoded,
    /// Feature values over `encoded.residues` residues.
    pub features: &'a RecordFeatures,
    /// Stable key of the record (seeds its null draws), see [`super::null::sequence_key`].
    pub key: u64,
}

/// Accumulates the counts of a stream of batches.
pub struct Accumulator {
    specs: Vec<FeatureSpec>,
    token_cols: Vec<usize>,
    contact: Option<usize>,
    theta: f32,
    seed: u64,
    counts: PartialCounts,
    /// On the CPU, one fused pass per layer ([`layer_sums`]) instead of tensor operations.
    fused: bool,
}

/// Adds a per-sequence real to an exact (fixed-point) sum, so totals do not
/// depend on the order or grouping in which sequences are added.
fn add_real(field: &mut Option<Fixed128>, x: f64) -> candle_core::Result<()> {
    let v = Fixed128::from_f64(x).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "attention sums are not finite ({x}): the model produced NaN or inf"
        ))
    })?;
    counts::add_exact(field, &Some(v));
    Ok(())
}

/// Host copy of a `[B, H]` or `[B, H, F]` f64 tensor.
fn host(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()
}

impl Accumulator {
    /// An accumulator for a model shape and features, threshold θ, with
    /// `null_samples` Monte Carlo null samples per head drawn from `seed`.
    /// (Null weighted hits are not sampled — that needs whole rows on the
    /// host — only their closed-form moments are accumulated.)
    pub fn new(
        specs: Vec<FeatureSpec>,
        n_layers: usize,
        n_heads: usize,
        theta: f64,
        null_samples: u32,
        seed: u64,
    ) -> Self {
        let names: Vec<String> = specs.iter().map(|f| f.name.clone()).collect();
        let contact = specs
            .iter()
            .position(|f| matches!(f.kind, FeatureKind::Contact(_)));
        let counts = counts::empty(n_layers as u32, n_heads as u32, null_samples, &names);
        Self {
            token_cols: token_features(&specs),
            contact,
            theta: theta as f32,
            seed,
            counts,
            specs,
            fused: true,
        }
    }

    /// The same accumulator computing with tensor operations on every device
    /// (the GPU path), also on the CPU: the reference the fused CPU path is
    /// tested against.
    pub fn with_tensor_path(mut self) -> Self {
        self.fused = false;
        self
    }

    /// The counts so far.
    pub fn counts(&self) -> &PartialCounts {
        &self.counts
    }

    /// The final counts.
    pub fn into_counts(self) -> PartialCounts {
        self.counts
    }

    /// Adds one batch: `attentions` per layer `[B, H, T, T]` for the sequences
    /// in order (`pads_left` as the tokenizer padded them).
    pub fn add_batch(
        &mut self,
        attentions: &[Tensor],
        seqs: &[SequenceInput],
        pads_left: bool,
    ) -> candle_core::Result<()> {
        let Some(first) = attentions.first() else {
            return Ok(());
        };
        let n_layers = self.counts.n_layers as usize;
        if attentions.len() != n_layers {
            candle_core::bail!("attention has {} layers, expected {n_layers}", attentions.len());
        }
        let (_, _, t, _) = first.dims4()?;
        let mut batch = self.begin_batch(seqs, pads_left, t, first.device())?;
        for (layer, a) in attentions.iter().enumerate() {
            batch.add_layer(layer, a)?;
        }
        Ok(())
    }

    /// Starts one batch of `seqs` padded to `t` tokens (`pads_left` as the
    /// tokenizer padded them): background counts are added now, each
    /// layer's attention with [`BatchCounts::add_layer`] as the model
    /// computes it, so only one layer's attention need exist at a time.
    pub fn begin_batch<'a>(
        &'a mut self,
        seqs: &'a [SequenceInput<'a>],
        pads_left: bool,
        t: usize,
        device: &Device,
    ) -> candle_core::Result<BatchCounts<'a>> {
        let device = device.clone();
        let b = seqs.len();
        let ft = self.token_cols.len();

        // Host-side masks and feature matrices at token positions.
        let mut residue_mask = vec![0f64; b * t];
        let mut g = vec![0f64; b * t * ft];
        let mut cmap = self.contact.map(|_| vec![0f64; b * t * t]);
        let mut positions: Vec<Vec<usize>> = Vec::with_capacity(b);
        for (k, s) in seqs.iter().enumerate() {
            let offset = if pads_left { t - s.encoded.ids.len() } else { 0 };
            let pos: Vec<usize> = (0..s.encoded.ids.len())
                .filter(|i| !s.encoded.special[*i])
                .map(|i| offset + i)
                .collect();
            let len = s.features.len.min(pos.len());
            for (r, &p) in pos.iter().take(len).enumerate() {
                residue_mask[k * t + p] = 1.0;
                for c in 0..ft {
                    g[(k * t + p) * ft + c] = s.features.token[r * ft + c];
                }
            }
            if let (Some(cm), Some(c)) = (cmap.as_mut(), s.features.contact.as_ref()) {
                let n = s.features.len;
                for (ri, &pi) in pos.iter().take(len).enumerate() {
                    for (rj, &pj) in pos.iter().take(len).enumerate() {
                        cm[(k * t + pi) * t + pj] = c[ri * n + rj];
                    }
                }
            }
            positions.push(pos.into_iter().take(len).collect());
        }
        self.add_backgrounds(seqs);

        let r = Tensor::from_vec(residue_mask, (b, t), &device)?;
        let pair_mask = r.unsqueeze(2)?.broadcast_mul(&r.unsqueeze(1)?)?.unsqueeze(1)?; // [B,1,T,T]
        let g_tensor = (ft > 0)
            .then(|| Tensor::from_slice(&g, (b, t, ft), &device))
            .transpose()?;
        let cmap_tensor = cmap
            .as_ref()
            .map(|c| Tensor::from_slice(c, (b, t, t), &device))
            .transpose()?;
        let lens: Vec<f64> = positions.iter().map(|p| p.len() as f64).collect();
        // Closed-form null for contacts: mean Σ_i k_i p_i, var Σ_i k_i (n − k_i) q_i with
        // p_i = K_i / n, q_i = p_i (1 − p_i) / (n − 1) (hypergeometric rows).
        let mut contact_host = None;
        let contact_rows = match &cmap_tensor {
            Some(c) => {
                let k_row = host(&c.sum(2)?)?; // [B, T]
                let mut p_row = vec![0f64; b * t];
                let mut q = vec![0f64; b * t];
                for k in 0..b {
                    let n = lens[k];
                    for i in 0..t {
                        let p = if n > 0.0 { k_row[k * t + i] / n } else { 0.0 };
                        p_row[k * t + i] = p;
                        q[k * t + i] = if n > 1.0 { p * (1.0 - p) / (n - 1.0) } else { 0.0 };
                    }
                }
                let rows = (
                    Tensor::from_slice(&p_row, (b, 1, t), &device)?,
                    Tensor::from_slice(&q, (b, 1, t), &device)?,
                );
                contact_host = cmap.map(|c| (c, p_row, q));
                Some(rows)
            }
            None => None,
        };
        let n_t = Tensor::from_vec(lens.clone(), (b, 1, 1), &device)?;
        let n_safe = n_t.clamp(1.0, f64::MAX)?;

        let null_rows = if self.counts.null_samples > 0 {
            sparse_rows(seqs, &positions, ft)
        } else {
            Vec::new()
        };
        Ok(BatchCounts {
            acc: self,
            seqs,
            b,
            t,
            pair_mask,
            g: g_tensor,
            cmap: cmap_tensor,
            contact_rows,
            g_host: g,
            contact_host,
            n_t,
            n_safe,
            lens,
            positions,
            null_rows,
        })
    }
}

/// A sequence's residues' non-zero token features, CSR-style: residue j's
/// (feature column, value) pairs are `entries[offsets[j]..offsets[j + 1]]`.
type SparseRows = (Vec<usize>, Vec<(usize, u64)>);

/// Each sequence's residues' non-zero token features (a residue carries a
/// few of them: its amino acid, its ss4 class, a site), so a null draw costs
/// a few additions rather than one per feature. Built once per batch.
fn sparse_rows(seqs: &[SequenceInput], positions: &[Vec<usize>], ft: usize) -> Vec<SparseRows> {
    seqs.iter()
        .zip(positions)
        .map(|(s, pos)| {
            let mut offsets = Vec::with_capacity(pos.len() + 1);
            let mut entries = Vec::new();
            offsets.push(0);
            for j in 0..pos.len() {
                for c in 0..ft {
                    let v = s.features.token[j * ft + c] as u64;
                    if v != 0 {
                        entries.push((c, v));
                    }
                }
                offsets.push(entries.len());
            }
            (offsets, entries)
        })
        .collect()
}

/// One batch being added to an [`Accumulator`], layer by layer.
pub struct BatchCounts<'a> {
    acc: &'a mut Accumulator,
    seqs: &'a [SequenceInput<'a>],
    b: usize,
    t: usize,
    pair_mask: Tensor,
    g: Option<Tensor>,
    cmap: Option<Tensor>,
    contact_rows: Option<(Tensor, Tensor)>,
    /// Host copies for the fused CPU path: token features `[B, T, F]`, and
    /// the contact map `[B, T, T]` with its row p and q `[B, T]`.
    g_host: Vec<f64>,
    contact_host: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    n_t: Tensor,
    n_safe: Tensor,
    lens: Vec<f64>,
    positions: Vec<Vec<usize>>,
    /// [`sparse_rows`] of the batch when null samples are drawn, else empty.
    null_rows: Vec<SparseRows>,
}

impl BatchCounts<'_> {
    /// One layer's sums by tensor operations on the attention's device (the
    /// GPU path; on the CPU [`layer_sums`] computes the same in one pass).
    fn tensor_sums(&self, a: &Tensor, want_rows: bool) -> candle_core::Result<LayerSums> {
        let thr = a
            .ge(self.acc.theta)?
            .to_dtype(DType::F64)?
            .broadcast_mul(&self.pair_mask)?;
        let a64 = a.to_dtype(DType::F64)?.broadcast_mul(&self.pair_mask)?;
        let arcs = host(&thr.sum((2, 3))?)?;
        let mass = host(&a64.sum((2, 3))?)?;
        let row_k = thr.sum(3)?; // [B,H,T]
        let sum_k2 = host(&row_k.sqr()?.sum(2)?)?;
        // Weighted null: a row's weights permuted over its n keys put a random
        // K-subset of them on the feature: mean K·mass/n, variance
        // K(n−K)/(n(n−1)) · Σ_m (α_m − ᾱ)², the latter = Σα² − mass²/n.
        let row_mass = a64.sum(3)?; // [B,H,T]
        let spread_w = a64
            .sqr()?
            .sum(3)?
            .sub(&row_mass.sqr()?.broadcast_div(&self.n_safe)?)?;
        let spread_w_sum = host(&spread_w.sum(2)?)?;
        let token = match &self.g {
            Some(g) => Some((host(&thr.sum(2)?.matmul(g)?)?, host(&a64.sum(2)?.matmul(g)?)?)),
            None => None,
        };
        let contact = match (&self.cmap, &self.contact_rows) {
            (Some(c), Some((p_row, q))) => {
                let c4 = c.unsqueeze(1)?;
                let hits = host(&thr.broadcast_mul(&c4)?.sum((2, 3))?)?;
                let weighted = host(&a64.broadcast_mul(&c4)?.sum((2, 3))?)?;
                let mean = host(&row_k.broadcast_mul(p_row)?.sum(2)?)?;
                let spread = row_k.broadcast_mul(&self.n_t)?.sub(&row_k.sqr()?)?;
                let var = host(&spread.broadcast_mul(q)?.sum(2)?)?;
                let w_mean = host(&row_mass.broadcast_mul(p_row)?.sum(2)?)?;
                let w_var = host(
                    &spread_w
                        .broadcast_mul(q)?
                        .sum(2)?
                        .broadcast_mul(&self.n_t.squeeze(2)?)?,
                )?;
                Some([hits, weighted, mean, var, w_mean, w_var])
            }
            _ => None,
        };
        Ok(LayerSums {
            arcs,
            mass,
            sum_k2,
            spread_w_sum,
            row_k: if want_rows { host(&row_k)? } else { Vec::new() },
            token,
            contact,
        })
    }

    /// Adds layer `layer`'s attention `[B, H, T, T]` (rows = queries) of the batch.
    pub fn add_layer(&mut self, layer: usize, a: &Tensor) -> candle_core::Result<()> {
        let (b, h, t, t2) = a.dims4()?;
        let (n_layers, n_heads) = (
            self.acc.counts.n_layers as usize,
            self.acc.counts.n_heads as usize,
        );
        if b != self.b || t != self.t || t2 != t {
            candle_core::bail!(
                "attention is [{b}, {h}, {t}, {t2}] for a batch of {} sequences of {} tokens",
                self.b,
                self.t
            );
        }
        if h != n_heads || layer >= n_layers {
            candle_core::bail!(
                "attention of layer {layer} with {h} heads; the model has {n_layers} × {n_heads}"
            );
        }
        let ft = self.acc.token_cols.len();
        let want_rows = self.acc.counts.null_samples > 0;
        let sums = match (self.acc.fused, &*a.storage_and_layout().0) {
            (true, candle_core::Storage::Cpu(_)) => {
                let a = a.to_dtype(DType::F32)?.contiguous()?;
                let (storage, layout) = a.storage_and_layout();
                let candle_core::Storage::Cpu(cpu) = &*storage else {
                    candle_core::bail!("CPU attention left the CPU");
                };
                let values =
                    &cpu.as_slice::<f32>()?[layout.start_offset()..layout.start_offset() + b * h * t * t];
                let hb = HostBatch {
                    b,
                    h,
                    t,
                    theta: self.acc.theta,
                    positions: &self.positions,
                    g: &self.g_host,
                    ft,
                    contact: self
                        .contact_host
                        .as_ref()
                        .map(|(c, p, q)| (c.as_slice(), p.as_slice(), q.as_slice())),
                    want_rows,
                };
                layer_sums(values, &hb)
            }
            _ => self.tensor_sums(a, want_rows)?,
        };
        if want_rows {
            self.acc.add_null_samples(
                layer,
                &sums.row_k,
                (h, t),
                self.seqs,
                &self.positions,
                &self.null_rows,
            );
        }
        let LayerSums {
            arcs,
            mass,
            sum_k2,
            spread_w_sum,
            token,
            contact,
            ..
        } = sums;
        let contact = contact.map(|[a, b, c, d, e, f]| (a, b, c, d, e, f));
        for (k, s) in self.seqs.iter().enumerate() {
            let n = self.lens[k];
            for head in 0..h {
                let bh = k * h + head;
                let slot = layer * h + head;
                for (c, &spec) in self.acc.token_cols.iter().enumerate() {
                    if !s.features.has[spec] {
                        continue;
                    }
                    let Some((hits, weighted)) = &token else { continue };
                    let big_k: f64 = (0..s.features.len).map(|j| s.features.token[j * ft + c]).sum();
                    let p = if n > 0.0 { big_k / n } else { 0.0 };
                    let hc = &mut self.acc.counts.features[spec].heads[slot];
                    hc.arcs += arcs[bh] as u64;
                    hc.hits += hits[bh * ft + c] as u64;
                    add_real(&mut hc.attn_mass, mass[bh])?;
                    add_real(&mut hc.weighted_hits, weighted[bh * ft + c])?;
                    add_real(&mut hc.null_exact_mean, arcs[bh] * p)?;
                    if n > 1.0 {
                        add_real(
                            &mut hc.null_exact_var,
                            (n * arcs[bh] - sum_k2[bh]) * p * (1.0 - p) / (n - 1.0),
                        )?;
                        add_real(
                            &mut hc.null_weighted_exact_var,
                            p * (1.0 - p) * n / (n - 1.0) * spread_w_sum[bh],
                        )?;
                    }
                    add_real(&mut hc.null_weighted_exact_mean, mass[bh] * p)?;
                }
                if let (Some(spec), Some((hits, weighted, mean, var, w_mean, w_var))) =
                    (self.acc.contact, &contact)
                    && s.features.has[spec]
                {
                    let hc = &mut self.acc.counts.features[spec].heads[slot];
                    hc.arcs += arcs[bh] as u64;
                    hc.hits += hits[bh] as u64;
                    add_real(&mut hc.attn_mass, mass[bh])?;
                    add_real(&mut hc.weighted_hits, weighted[bh])?;
                    add_real(&mut hc.null_exact_mean, mean[bh])?;
                    add_real(&mut hc.null_exact_var, var[bh])?;
                    add_real(&mut hc.null_weighted_exact_mean, w_mean[bh])?;
                    add_real(&mut hc.null_weighted_exact_var, w_var[bh])?;
                }
            }
        }
        Ok(())
    }
}

impl Accumulator {
    /// Monte Carlo null hits for one layer: `arcs_per_row` is `[B, H, T]`.
    /// Each (sequence, head) draws its samples from its own streams, in
    /// parallel; the integer hits are then added in order.
    fn add_null_samples(
        &mut self,
        layer: usize,
        arcs_per_row: &[f64],
        (h, t): (usize, usize),
        seqs: &[SequenceInput],
        positions: &[Vec<usize>],
        sparse: &[SparseRows],
    ) {
        let ft = self.token_cols.len();
        let k_samples = self.counts.null_samples as usize;
        let seed = self.seed;
        // Per (sequence, head): per sample, the hits of each token feature, then contact hits.
        let width = ft + 1;
        let per_head: Vec<Vec<u64>> = (0..seqs.len() * h)
            .into_par_iter()
            .map(|bh| {
                let (b, head) = (bh / h, bh % h);
                let pos = &positions[b];
                let n = pos.len();
                let f = seqs[b].features;
                let (offsets, entries) = &sparse[b];
                // Query rows with arcs and their arc counts: the same for every sample.
                let rows: Vec<(usize, usize)> = pos
                    .iter()
                    .enumerate()
                    .map(|(row, &p)| (row, (arcs_per_row[bh * t + p] as usize).min(n)))
                    .filter(|&(_, k)| k > 0)
                    .collect();
                let mut out = vec![0u64; k_samples * width];
                let mut drawn = Vec::new();
                for (sample, hits) in out.chunks_exact_mut(width).enumerate() {
                    let mut stream = NullStream::new(seed, seqs[b].key, layer, head, sample as u32);
                    for &(row, k) in &rows {
                        stream.distinct(k, n, &mut drawn);
                        for &j in &drawn {
                            for &(c, v) in &entries[offsets[j]..offsets[j + 1]] {
                                hits[c] += v;
                            }
                            if let Some(cm) = &f.contact {
                                hits[ft] += cm[row * f.len + j] as u64;
                            }
                        }
                    }
                }
                out
            })
            .collect();
        for (bh, samples) in per_head.iter().enumerate() {
            let (b, head) = (bh / h, bh % h);
            let f = seqs[b].features;
            let slot = layer * h + head;
            for (sample, hits) in samples.chunks_exact(width).enumerate() {
                for (c, &spec) in self.token_cols.iter().enumerate() {
                    if f.has[spec] {
                        self.counts.features[spec].heads[slot].null_hits[sample] += hits[c];
                    }
                }
                if let Some(spec) = self.contact
                    && f.has[spec]
                {
                    self.counts.features[spec].heads[slot].null_hits[sample] += hits[ft];
                }
            }
        }
    }

    /// Background counts and sequence/residue totals (independent of attention).
    fn add_backgrounds(&mut self, seqs: &[SequenceInput]) {
        let ft = self.token_cols.len();
        for s in seqs {
            self.counts.sequences += 1;
            self.counts.residues += s.features.len as u64;
            for (c, &spec) in self.token_cols.iter().enumerate() {
                if s.features.has[spec] {
                    let f = &mut self.counts.features[spec];
                    for j in 0..s.features.len {
                        f.background_hits += s.features.token[j * ft + c] as u64;
                        f.background_total += s.features.token_valid[j * ft + c] as u64;
                    }
                }
            }
            if let (Some(spec), Some(c), Some(v)) = (
                self.contact,
                s.features.contact.as_ref(),
                s.features.contact_valid.as_ref(),
            ) && s.features.has[spec]
            {
                let f = &mut self.counts.features[spec];
                f.background_hits += c.iter().sum::<f64>() as u64;
                f.background_total += v.iter().sum::<f64>() as u64;
            }
        }
    }

    /// The features, in output order.
    pub fn specs(&self) -> &[FeatureSpec] {
        &self.specs
    }
}
