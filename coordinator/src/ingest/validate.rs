//! The record rules every format shares: a record that breaks one is
//! rejected with a reason naming the record, and the others go on.

use headscan_proto::features::{SS8_UNLABELLED, is_sequence_letter, is_ss8_letter};
use headscan_proto::manifest::Rejection;
use headscan_proto::record::ProteinRecord;

use super::rejection;

/// Normalises a record in place (upper-case sequence, sorted unique sites,
/// NaN coordinates for unresolved residues) and checks it.
pub fn validate(r: &mut ProteinRecord) -> Result<(), Rejection> {
    let reject = |r: &ProteinRecord, kind: &str, reason: String| {
        Err(rejection(
            Some(&r.id),
            r.source.clone(),
            kind,
            format!("record `{}`: {reason}", r.id),
        ))
    };
    let id = r.id.trim();
    if id.is_empty() {
        return Err(rejection(
            None,
            r.source.clone(),
            "missing_id",
            "record has an empty id",
        ));
    }
    if id.len() != r.id.len() {
        r.id = id.to_string();
    }
    if r.id.chars().any(char::is_control) {
        return reject(r, "invalid_id", "id contains control characters".into());
    }
    let mut seq: String = r.sequence.chars().filter(|c| !c.is_whitespace()).collect();
    if seq.ends_with('*') {
        seq.pop(); // a terminal stop codon marker is not a residue
    }
    seq.make_ascii_uppercase();
    r.sequence = seq;
    if r.sequence.is_empty() {
        return reject(r, "empty_sequence", "empty sequence".into());
    }
    if let Some((pos, c)) = r
        .sequence
        .chars()
        .enumerate()
        .find(|(_, c)| !is_sequence_letter(*c))
    {
        return reject(
            r,
            "invalid_letter",
            format!("letter {c:?} at position {} is not an amino-acid code", pos + 1),
        );
    }
    let len = r.sequence.len();
    if let Some(ca) = &r.ca_coords
        && ca.len() != 3 * len
    {
        return reject(
            r,
            "length_mismatch",
            format!(
                "{} Cα coordinate values for {len} residues (expected {})",
                ca.len(),
                3 * len
            ),
        );
    }
    if let Some(res) = &r.resolved
        && res.len() != len
    {
        return reject(
            r,
            "length_mismatch",
            format!("resolved mask has {} entries for {len} residues", res.len()),
        );
    }
    if let (Some(ca), Some(res)) = (&mut r.ca_coords, &r.resolved) {
        for (i, ok) in res.iter().enumerate() {
            let xyz = &mut ca[3 * i..3 * i + 3];
            if !ok {
                xyz.fill(f32::NAN);
            } else if xyz.iter().any(|v| !v.is_finite()) {
                return Err(rejection(
                    Some(&r.id),
                    r.source.clone(),
                    "invalid_coordinates",
                    format!(
                        "record `{}`: residue {} is marked resolved but has no finite Cα coordinates",
                        r.id,
                        i + 1
                    ),
                ));
            }
        }
    } else if let Some(ca) = &r.ca_coords {
        // Coordinates without a mask: a residue is resolved when its coordinates are finite.
        r.resolved = Some(
            ca.chunks(3)
                .map(|xyz| xyz.iter().all(|v| v.is_finite()))
                .collect(),
        );
    }
    if let Some(ss8) = &mut r.ss8 {
        let normalised: String = ss8
            .chars()
            .map(|c| if c == ' ' { '-' } else { c.to_ascii_uppercase() })
            .collect();
        *ss8 = normalised;
        let n = ss8.chars().count();
        if n != len {
            return reject(
                r,
                "length_mismatch",
                format!("ss8 has {n} labels for {len} residues"),
            );
        }
        if let Some((pos, c)) = ss8.chars().enumerate().find(|(_, c)| !is_ss8_letter(*c)) {
            return reject(
                r,
                "invalid_label",
                format!(
                    "ss8 letter {c:?} at position {} is not a DSSP state (or `{SS8_UNLABELLED}`)",
                    pos + 1
                ),
            );
        }
    }
    let check = |name: &str, positions: &mut Vec<i32>| -> Result<(), String> {
        positions.sort_unstable();
        positions.dedup();
        match positions.iter().find(|p| **p < 0 || **p as usize >= len) {
            Some(p) => Err(format!(
                "{name} position {} (1-based) is outside the sequence of {len} residues",
                *p as i64 + 1
            )),
            None => Ok(()),
        }
    };
    let mut problems = Vec::new();
    if let Some(b) = &mut r.binding_sites {
        problems.extend(check("binding_site", b).err());
    }
    if let Some(p) = &mut r.ptm_sites {
        problems.extend(check("ptm", p).err());
    }
    if let Some(sites) = &mut r.sites {
        sites.sort_by(|a, b| a.name.cmp(&b.name));
        for s in sites.iter_mut() {
            if s.name.is_empty() {
                problems.push("a site annotation has an empty name".into());
            }
            problems.extend(check(&format!("site:{}", s.name), &mut s.positions).err());
        }
        for w in sites.windows(2) {
            if w[0].name == w[1].name {
                problems.push(format!("site `{}` listed twice", w[0].name));
            }
        }
    }
    if let Some(first) = problems.into_iter().next() {
        return reject(r, "position_out_of_range", first);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use headscan_proto::record::SiteAnnotation;

    fn rec(seq: &str) -> ProteinRecord {
        ProteinRecord::new("p1", seq, "test:1")
    }

    #[test]
    fn normalises_case_whitespace_and_stop() {
        let mut r = rec("mk ta\nQ*");
        validate(&mut r).unwrap();
        assert_eq!(r.sequence, "MKTAQ");
    }

    #[test]
    fn rejects_letters_outside_the_alphabet() {
        let e = validate(&mut rec("MK1TA")).unwrap_err();
        assert_eq!(e.kind, "invalid_letter");
        assert!(
            e.reason.contains("position 3") && e.reason.contains("p1"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn rejects_empty_sequences() {
        assert_eq!(validate(&mut rec("")).unwrap_err().kind, "empty_sequence");
        assert_eq!(validate(&mut rec("*")).unwrap_err().kind, "empty_sequence");
    }

    #[test]
    fn rejects_coordinate_length_mismatch() {
        let mut r = rec("MKT");
        r.ca_coords = Some(vec![0.0; 6]);
        assert_eq!(validate(&mut r).unwrap_err().kind, "length_mismatch");
        let mut r = rec("MKT");
        r.ca_coords = Some(vec![0.0; 9]);
        r.resolved = Some(vec![true; 2]);
        assert_eq!(validate(&mut r).unwrap_err().kind, "length_mismatch");
    }

    #[test]
    fn rejects_positions_outside_the_sequence() {
        let mut r = rec("MKT");
        r.binding_sites = Some(vec![3]);
        let e = validate(&mut r).unwrap_err();
        assert_eq!(e.kind, "position_out_of_range");
        assert!(e.reason.contains("position 4"), "{}", e.reason);
        let mut r = rec("MKT");
        r.sites = Some(vec![SiteAnnotation {
            name: "metal".into(),
            positions: vec![-1],
        }]);
        assert_eq!(validate(&mut r).unwrap_err().kind, "position_out_of_range");
    }

    #[test]
    fn unresolved_coordinates_become_nan_and_mask_is_derived() {
        let mut r = rec("MK");
        r.ca_coords = Some(vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
        r.resolved = Some(vec![true, false]);
        validate(&mut r).unwrap();
        assert!(r.ca_coords.as_ref().unwrap()[3].is_nan());
        let mut r = rec("MK");
        r.ca_coords = Some(vec![1.0, 2.0, 3.0, f32::NAN, f32::NAN, f32::NAN]);
        validate(&mut r).unwrap();
        assert_eq!(r.resolved, Some(vec![true, false]));
    }

    #[test]
    fn ss8_blank_is_coil_and_unknown_letters_are_rejected() {
        let mut r = rec("MKT");
        r.ss8 = Some("H E".into());
        validate(&mut r).unwrap();
        assert_eq!(r.ss8.as_deref(), Some("H-E"));
        let mut r = rec("MKT");
        r.ss8 = Some("HQE".into());
        assert_eq!(validate(&mut r).unwrap_err().kind, "invalid_label");
    }
}
