//! The Monte Carlo null of the thresholded counts: each query row's attention
//! weights are permuted among the row's residue keys, so the row's k
//! high-confidence arcs (k ≤ ⌊1/θ⌋) land on k distinct keys drawn uniformly
//! from its n residues. A sample's hits are the feature values at the drawn
//! keys. Draws are a pure function of (seed, sequence key, layer, head,
//! sample, row), so results never depend on batching, sharding or workers.

/// SplitMix64 step: a well-mixed 64-bit value from a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A counter-based stream for one (seed, sequence, layer, head, sample).
#[derive(Debug, Clone)]
pub struct NullStream {
    state: u64,
}

impl NullStream {
    /// The stream of one sample of one head on one sequence.
    pub fn new(seed: u64, sequence_key: u64, layer: usize, head: usize, sample: u32) -> Self {
        let mut s = mix(seed);
        for part in [sequence_key, layer as u64, head as u64, sample as u64] {
            s = mix(s ^ part);
        }
        Self { state: s }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform integer in `0..n` (n > 0), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// k distinct values of `0..n`, uniformly (Floyd's algorithm), k ≤ n, in draw order.
    pub fn distinct(&mut self, k: usize, n: usize, out: &mut Vec<usize>) {
        out.clear();
        for j in (n - k)..n {
            let t = self.below(j as u64 + 1) as usize;
            if out.contains(&t) {
                out.push(j);
            } else {
                out.push(t);
            }
        }
    }
}

/// A stable 64-bit key of a record id (first 8 bytes of its SHA-256).
pub fn sequence_key(id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_uniform_and_reproducible() {
        let mut counts = [0u32; 10];
        let mut out = Vec::new();
        for sample in 0..20_000 {
            let mut s = NullStream::new(7, 42, 1, 2, sample);
            s.distinct(3, 10, &mut out);
            let mut sorted = out.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3);
            out.iter().for_each(|i| counts[*i] += 1);
        }
        // Each key is drawn with probability 3/10: 6000 ± 3·sqrt(6000·0.7).
        for c in counts {
            assert!(
                (c as f64 - 6000.0).abs() < 3.0 * (6000.0f64 * 0.7).sqrt() + 1.0,
                "{counts:?}"
            );
        }
        let (mut a, mut b) = (NullStream::new(1, 2, 3, 4, 5), NullStream::new(1, 2, 3, 4, 5));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(
            NullStream::new(1, 2, 3, 4, 5).next_u64(),
            NullStream::new(1, 2, 3, 4, 6).next_u64()
        );
    }
}
