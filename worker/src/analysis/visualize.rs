//! Attention of the records a job visualises (config `visualize`): each
//! head's weights at or above a floor, sparse, residue-indexed (special
//! tokens removed, as in counting). The only dense attention that leaves
//! the device, and only for the few records named.

use candle_core::{DType, Tensor};
use headscan_proto::pb::SequenceAttention;

use crate::tokenizer::Encoded;

/// Weights below this are not kept for visualised records.
pub const ATTENTION_FLOOR: f32 = 0.05;

/// The attention of batch row `k` (`attentions`: per layer `[B, H, T, T]`),
/// weights ≥ `floor`, in (layer, head, query, key) order.
pub fn sparse_attention(
    attentions: &[Tensor],
    k: usize,
    encoded: &Encoded,
    pads_left: bool,
    id: &str,
    floor: f32,
) -> candle_core::Result<SequenceAttention> {
    let mut out = SequenceAttention {
        id: id.to_string(),
        residues: encoded.residues as u32,
        ..Default::default()
    };
    for (l, layer) in attentions.iter().enumerate() {
        let a = layer.get(k)?.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let t = a.first().map_or(0, Vec::len);
        let offset = if pads_left {
            t.saturating_sub(encoded.ids.len())
        } else {
            0
        };
        let pos: Vec<usize> = (0..encoded.ids.len())
            .filter(|&i| !encoded.special[i])
            .map(|i| offset + i)
            .filter(|&p| p < t)
            .take(encoded.residues)
            .collect();
        for (h, rows) in a.iter().enumerate() {
            for (ri, &pi) in pos.iter().enumerate() {
                for (rj, &pj) in pos.iter().enumerate() {
                    let w = rows[pi][pj];
                    if w >= floor {
                        out.layer.push(l as u32);
                        out.head.push(h as u32);
                        out.i.push(ri as u32);
                        out.j.push(rj as u32);
                        out.weight.push(w);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn specials_are_removed_and_weights_below_the_floor_dropped() {
        // One layer, one head, T = 4 tokens: [CLS] A B [SEP].
        let w: Vec<f32> = vec![
            0.1, 0.2, 0.3, 0.4, //
            0.0, 0.04, 0.9, 0.06, //
            0.5, 0.05, 0.2, 0.25, //
            1.0, 0.0, 0.0, 0.0,
        ];
        let att = Tensor::from_vec(w, (1, 1, 4, 4), &Device::Cpu).unwrap();
        let enc = Encoded {
            ids: vec![2, 5, 6, 3],
            special: vec![true, false, false, true],
            type_ids: vec![0; 4],
            residues: 2,
        };
        let s = sparse_attention(&[att], 0, &enc, false, "x", ATTENTION_FLOOR).unwrap();
        assert_eq!(s.residues, 2);
        assert_eq!((s.i.clone(), s.j.clone()), (vec![0, 1, 1], vec![1, 0, 1]));
        assert_eq!(s.weight, vec![0.9, 0.05, 0.2]);
        assert_eq!((s.layer, s.head), (vec![0; 3], vec![0; 3]));
    }
}
