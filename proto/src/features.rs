//! The meaning of the per-residue and per-pair features of DESIGN §1.

/// The 20 standard amino acids, in alphabetical one-letter order.
pub const STANDARD_AMINO_ACIDS: [char; 20] = [
    'A', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'K', 'L', 'M', 'N', 'P', 'Q', 'R', 'S', 'T', 'V', 'W', 'Y',
];

/// Letters accepted in a canonical sequence: the 20 standard residues plus the
/// IUPAC extras X (unknown), B (D/N), Z (E/Q), J (I/L), U (selenocysteine) and
/// O (pyrrolysine), which protein language model vocabularies all handle.
pub fn is_sequence_letter(c: char) -> bool {
    STANDARD_AMINO_ACIDS.contains(&c) || matches!(c, 'X' | 'B' | 'Z' | 'J' | 'U' | 'O')
}

/// The `ss8` letter that marks a residue without a secondary-structure label
/// (not a valid position for `ss4:*`).
pub const SS8_UNLABELLED: char = '?';

/// The four secondary-structure classes of provis (`ss4:*` features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ss4 {
    /// DSSP H, G, I.
    Helix,
    /// DSSP E, B.
    Strand,
    /// DSSP T, S.
    TurnBend,
    /// Everything else that is labelled (blank, `-`, C, L, P).
    Coil,
}

impl Ss4 {
    /// All classes, in the order features are reported.
    pub const ALL: [Ss4; 4] = [Ss4::Helix, Ss4::Strand, Ss4::TurnBend, Ss4::Coil];

    /// The stable feature name, e.g. `ss4:helix`.
    pub fn feature_name(self) -> &'static str {
        match self {
            Ss4::Helix => "ss4:helix",
            Ss4::Strand => "ss4:strand",
            Ss4::TurnBend => "ss4:turn_bend",
            Ss4::Coil => "ss4:coil",
        }
    }
}

/// Maps a DSSP 8-state letter to its ss4 class; `None` for an unlabelled residue.
pub fn ss4_class(dssp: char) -> Option<Ss4> {
    match dssp {
        SS8_UNLABELLED => None,
        'H' | 'G' | 'I' => Some(Ss4::Helix),
        'E' | 'B' => Some(Ss4::Strand),
        'T' | 'S' => Some(Ss4::TurnBend),
        _ => Some(Ss4::Coil),
    }
}

/// Letters a canonical `ss8` string may hold.
pub fn is_ss8_letter(c: char) -> bool {
    matches!(
        c,
        'H' | 'G' | 'I' | 'E' | 'B' | 'T' | 'S' | 'C' | 'L' | 'P' | '-' | SS8_UNLABELLED
    )
}

/// The residue-contact rule of DESIGN §1 (provis' ProteinNet rule by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactRule {
    /// Cα–Cα distance strictly below which two residues are in contact, Å.
    pub max_distance: f32,
    /// Minimum sequence separation |i − j| of a valid pair.
    pub min_separation: usize,
}

impl Default for ContactRule {
    fn default() -> Self {
        Self {
            max_distance: 8.0,
            min_separation: 6,
        }
    }
}

/// Per-protein contact counts under a [`ContactRule`] (unordered pairs i < j).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactCounts {
    /// Valid pairs in contact.
    pub contacts: u64,
    /// Valid pairs: separation ≥ the minimum and both residues resolved.
    pub valid_pairs: u64,
}

impl ContactRule {
    /// Per residue of the first `n`: resolved (when a mask is given) and with
    /// finite Cα coordinates in `ca` (3 values per residue).
    pub fn usable(ca: &[f32], resolved: Option<&[bool]>, n: usize) -> Vec<bool> {
        (0..n)
            .map(|i| {
                resolved.is_none_or(|r| r.get(i).copied().unwrap_or(false))
                    && ca
                        .get(3 * i..3 * i + 3)
                        .is_some_and(|xyz| xyz.iter().all(|v| v.is_finite()))
            })
            .collect()
    }

    /// The rule for pair (i, j) given [`Self::usable`] flags: `None` when the
    /// pair is not valid, else whether the residues are in contact.
    pub fn pair(&self, ca: &[f32], usable: &[bool], i: usize, j: usize) -> Option<bool> {
        if !(usable[i] && usable[j] && i.abs_diff(j) >= self.min_separation.max(1)) {
            return None;
        }
        let d2: f32 = (0..3).map(|k| (ca[3 * i + k] - ca[3 * j + k]).powi(2)).sum();
        Some(d2 < self.max_distance * self.max_distance)
    }

    /// Counts contacts among the valid pairs of one chain. `ca` holds 3·L
    /// coordinates; `resolved` (if any) marks residues with coordinates.
    /// Residues with non-finite coordinates are never valid.
    pub fn count(&self, ca: &[f32], resolved: Option<&[bool]>) -> ContactCounts {
        let n = ca.len() / 3;
        let ok = Self::usable(ca, resolved, n);
        let mut counts = ContactCounts::default();
        for i in 0..n {
            for j in (i + 1)..n {
                if let Some(contact) = self.pair(ca, &ok, i, j) {
                    counts.valid_pairs += 1;
                    counts.contacts += contact as u64;
                }
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss4_follows_provis_mapping() {
        for (c, class) in [
            ('H', Ss4::Helix),
            ('G', Ss4::Helix),
            ('I', Ss4::Helix),
            ('E', Ss4::Strand),
            ('B', Ss4::Strand),
            ('T', Ss4::TurnBend),
            ('S', Ss4::TurnBend),
            ('C', Ss4::Coil),
            ('-', Ss4::Coil),
            ('L', Ss4::Coil),
            ('P', Ss4::Coil),
        ] {
            assert_eq!(ss4_class(c), Some(class), "{c}");
        }
        assert_eq!(ss4_class(SS8_UNLABELLED), None);
    }

    #[test]
    fn contact_rule_uses_strict_distance_and_separation() {
        // Residues on a line 1 Å apart: i,j are in contact iff |i-j| < 8.
        let ca: Vec<f32> = (0..20).flat_map(|i| [i as f32, 0.0, 0.0]).collect();
        let c = ContactRule::default().count(&ca, None);
        // valid pairs: separation 6..19; contacts: separation 6 and 7.
        let valid: u64 = (6..20).map(|s| 20 - s).sum();
        assert_eq!(c.valid_pairs, valid);
        assert_eq!(c.contacts, (20 - 6) + (20 - 7));
        let mut resolved = vec![true; 20];
        resolved[0] = false;
        let c2 = ContactRule::default().count(&ca, Some(&resolved));
        assert_eq!(c2.valid_pairs, valid - 14);
    }
}
