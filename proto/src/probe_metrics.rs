//! Metrics of the diagnostic probes (Vig et al. 2021 §5, Figure 5; ESM's
//! contact regression): F1 per class and macro F1 for ss4, and precision at
//! L/k for token tasks (binding sites, PTMs) and contacts, with range buckets.
//!
//! Every metric is built from integer counts that add up over sequences and
//! shards ([`ClassCounts`], [`PrecisionCounts`]), so a worker can score its
//! shard and the coordinator can sum the counts in any order and get the same
//! number. Precision at L/k is micro-averaged over sequences, as TAPE's and
//! provis' `precision_at_l5`: Σ correct / Σ selected, where each sequence of
//! length L contributes its top ⌊L/k⌋ candidates by score (ties broken by the
//! lower index, so the choice is deterministic).

/// Minimum sequence separation of a contact pair scored by the probes.
pub const MIN_CONTACT_SEPARATION: usize = 6;

/// Per-class confusion counts of a multi-class prediction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassCounts {
    /// True positives per class.
    pub tp: Vec<u64>,
    /// False positives per class.
    pub fp: Vec<u64>,
    /// False negatives per class.
    pub fn_: Vec<u64>,
}

impl ClassCounts {
    /// Empty counts for `n_classes` classes.
    pub fn new(n_classes: usize) -> Self {
        Self {
            tp: vec![0; n_classes],
            fp: vec![0; n_classes],
            fn_: vec![0; n_classes],
        }
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.tp.len()
    }

    /// Adds one prediction; classes out of range are an error.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<(), MetricError> {
        let n = self.n_classes();
        if truth >= n || predicted >= n {
            return Err(MetricError::ClassOutOfRange {
                class: truth.max(predicted),
                n_classes: n,
            });
        }
        if truth == predicted {
            self.tp[truth] += 1;
        } else {
            self.fp[predicted] += 1;
            self.fn_[truth] += 1;
        }
        Ok(())
    }

    /// Adds another set of counts (another sequence or shard).
    pub fn merge(&mut self, other: &ClassCounts) -> Result<(), MetricError> {
        if other.n_classes() != self.n_classes() {
            return Err(MetricError::ClassCountMismatch(
                self.n_classes(),
                other.n_classes(),
            ));
        }
        for c in 0..self.n_classes() {
            self.tp[c] += other.tp[c];
            self.fp[c] += other.fp[c];
            self.fn_[c] += other.fn_[c];
        }
        Ok(())
    }

    /// F1 of one class: 2·tp / (2·tp + fp + fn); 0 when the class never
    /// occurs in truth or prediction (scikit-learn's `zero_division=0`).
    pub fn f1(&self, class: usize) -> f64 {
        let denom = 2 * self.tp[class] + self.fp[class] + self.fn_[class];
        if denom == 0 {
            0.0
        } else {
            (2 * self.tp[class]) as f64 / denom as f64
        }
    }

    /// Whether a class occurs in the truth or the predictions.
    pub fn seen(&self, class: usize) -> bool {
        self.tp[class] + self.fp[class] + self.fn_[class] > 0
    }

    /// Unweighted mean of the F1 of the classes that occur in the truth or the
    /// predictions (scikit-learn's `f1_score(average="macro")`); 0 when none does.
    pub fn f1_macro(&self) -> f64 {
        let seen: Vec<usize> = (0..self.n_classes()).filter(|&c| self.seen(c)).collect();
        if seen.is_empty() {
            return 0.0;
        }
        seen.iter().map(|&c| self.f1(c)).sum::<f64>() / seen.len() as f64
    }
}

/// Correct and selected counts behind a precision at L/k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrecisionCounts {
    /// Selected candidates that are true.
    pub correct: u64,
    /// Candidates selected.
    pub selected: u64,
}

impl PrecisionCounts {
    /// Adds another sequence's or shard's counts.
    pub fn merge(&mut self, other: PrecisionCounts) {
        self.correct += other.correct;
        self.selected += other.selected;
    }

    /// correct / selected; `None` when nothing was selected.
    pub fn precision(&self) -> Option<f64> {
        (self.selected > 0).then(|| self.correct as f64 / self.selected as f64)
    }
}

/// A sequence-separation bucket of contact pairs (ESM's ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactRange {
    /// Every pair with |i−j| ≥ 6.
    All,
    /// 6 ≤ |i−j| ≤ 11.
    Short,
    /// 12 ≤ |i−j| ≤ 23.
    Medium,
    /// |i−j| ≥ 24.
    Long,
}

impl ContactRange {
    /// All buckets, in reporting order.
    pub const ALL: [ContactRange; 4] = [
        ContactRange::All,
        ContactRange::Short,
        ContactRange::Medium,
        ContactRange::Long,
    ];

    /// Whether a pair at separation `sep` = |i−j| falls in this bucket.
    pub fn contains(self, sep: usize) -> bool {
        match self {
            ContactRange::All => sep >= MIN_CONTACT_SEPARATION,
            ContactRange::Short => (6..12).contains(&sep),
            ContactRange::Medium => (12..24).contains(&sep),
            ContactRange::Long => sep >= 24,
        }
    }

    /// Name in result messages: `all`, `short`, `medium` or `long`.
    pub fn name(self) -> &'static str {
        match self {
            ContactRange::All => "all",
            ContactRange::Short => "short",
            ContactRange::Medium => "medium",
            ContactRange::Long => "long",
        }
    }

    /// The range of a [`ContactRange::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Suffix of metric names (`precision_at_L/5:long`); empty for `All`.
    pub fn suffix(self) -> &'static str {
        match self {
            ContactRange::All => "",
            ContactRange::Short => ":short",
            ContactRange::Medium => ":medium",
            ContactRange::Long => ":long",
        }
    }
}

/// Name of a precision metric: `precision_at_L` for k = 1, else
/// `precision_at_L/<k>`, followed by the range suffix.
pub fn precision_metric_name(k: usize, range: ContactRange) -> String {
    let base = if k == 1 {
        "precision_at_L".to_string()
    } else {
        format!("precision_at_L/{k}")
    };
    format!("{base}{}", range.suffix())
}

/// Name of a per-class F1 metric: `f1:<class>`.
pub fn f1_metric_name(class: &str) -> String {
    format!("f1:{class}")
}

/// Errors of metric inputs.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    /// A class index outside `0..n_classes`.
    #[error("class {class} is out of range for {n_classes} classes")]
    ClassOutOfRange {
        /// Offending class.
        class: usize,
        /// Number of classes.
        n_classes: usize,
    },
    /// Counts of different class sets were merged.
    #[error("cannot merge counts of {0} and {1} classes")]
    ClassCountMismatch(usize, usize),
    /// Scores and labels of different lengths.
    #[error("{what}: {scores} scores but {labels} labels")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },
    /// k of L/k is zero.
    #[error("precision at L/k needs k ≥ 1")]
    ZeroK,
    /// A score is NaN.
    #[error("{what}: score at {index} is NaN")]
    NaN {
        /// Which input.
        what: &'static str,
        /// Offending index.
        index: usize,
    },
}

/// Indices of the `n` highest scores among `candidates` (descending score,
/// lower index first on ties).
fn top_n(scores: &[f64], candidates: &mut [usize], n: usize) -> usize {
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    n.min(candidates.len())
}

fn check_scores(what: &'static str, scores: &[f64], labels: usize) -> Result<(), MetricError> {
    if scores.len() != labels {
        return Err(MetricError::LengthMismatch {
            what,
            scores: scores.len(),
            labels,
        });
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(MetricError::NaN { what, index });
    }
    Ok(())
}

/// Precision at L/k of a per-residue task on one sequence of length L:
/// the top ⌊L/k⌋ valid residues by score, how many are labelled. `valid`
/// masks residues without a label (they are never selected).
pub fn token_precision_at(
    scores: &[f64],
    labels: &[bool],
    valid: &[bool],
    k: usize,
) -> Result<PrecisionCounts, MetricError> {
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    check_scores("token scores", scores, labels.len())?;
    if valid.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            what: "token validity mask",
            scores: valid.len(),
            labels: labels.len(),
        });
    }
    let l = labels.len();
    let mut candidates: Vec<usize> = (0..l).filter(|&i| valid[i]).collect();
    let n = top_n(scores, &mut candidates, l / k);
    let correct = candidates[..n].iter().filter(|&&i| labels[i]).count();
    Ok(PrecisionCounts {
        correct: correct as u64,
        selected: n as u64,
    })
}

/// Precision at L/k of contact prediction on one sequence of length L:
/// among pairs i < j in `range` whose label is known, the top ⌊L/k⌋ by
/// score, how many are contacts. `scores` and `labels` are row-major L×L
/// (only the upper triangle is read); a `None` label is an unknown pair
/// (unresolved residue), never selected.
pub fn contact_precision_at(
    scores: &[f64],
    labels: &[Option<bool>],
    l: usize,
    k: usize,
    range: ContactRange,
) -> Result<PrecisionCounts, MetricError> {
    if k == 0 {
        return Err(MetricError::ZeroK);
    }
    if labels.len() != l * l {
        return Err(MetricError::LengthMismatch {
            what: "contact labels (L×L)",
            scores: l * l,
            labels: labels.len(),
        });
    }
    check_scores("contact scores", scores, l * l)?;
    let mut candidates: Vec<usize> = Vec::new();
    for i in 0..l {
        for j in i + 1..l {
            if range.contains(j - i) && labels[i * l + j].is_some() {
                candidates.push(i * l + j);
            }
        }
    }
    let n = top_n(scores, &mut candidates, l / k);
    let correct = candidates[..n]
        .iter()
        .filter(|&&p| labels[p] == Some(true))
        .count();
    Ok(PrecisionCounts {
        correct: correct as u64,
        selected: n as u64,
    })
}
