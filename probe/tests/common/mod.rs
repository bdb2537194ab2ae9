//! Shared by the probe tests: a fixed stream of random numbers and the
//! split of labelled rows into shards.

use headscan_probe::logreg::Design;

/// splitmix64, with uniforms and Box–Muller standard normals drawn from it.
pub struct Stream(pub u64);

impl Stream {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Rows and their classes in `shards` consecutive designs of (nearly) equal size.
pub fn designs(rows: &[Vec<f64>], y: &[usize], shards: usize) -> Vec<Design> {
    let dim = rows.first().map_or(0, Vec::len);
    let per = rows.len().div_ceil(shards);
    rows.chunks(per)
        .zip(y.chunks(per))
        .map(|(xs, ys)| {
            let mut d = Design::new(dim);
            for (x, &c) in xs.iter().zip(ys) {
                d.push(x, c);
            }
            d
        })
        .collect()
}
