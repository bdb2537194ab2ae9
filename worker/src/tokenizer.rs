//! Each model family's own tokenisation of a protein sequence, one token per
//! residue plus the family's special tokens.
//!
//! | family | tokens | residues | padding |
//! |---|---|---|---|
//! | BERT (ProtBert) | `[CLS] … [SEP]` | U Z O B → X | right, `[PAD]` |
//! | TAPE BERT | `<cls> … <sep>` | as is (iupac vocab) | right, `<pad>` |
//! | ALBERT (ProtAlbert) | `[CLS] … [SEP]` | U Z O B → X, pieces `▁A` | right, `<pad>` |
//! | XLNet (ProtXLNet) | `… <sep> <cls>` | U Z O B → X | left, `<pad>`; type ids 0 / 2 (cls) / 3 (pad) |
//! | ESM | `<cls> … <eos>` | as is | right, `<pad>` |
//! | T5 (ProtT5) | `… </s>` | U Z O B → X | right, `<pad>` |
//!
//! Letters outside the vocabulary become the unknown token.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::models::{Family, ModelInput};

/// Errors reading a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Vocabulary file missing or unreadable.
    #[error("{path}: {reason}")]
    Vocab {
        /// File.
        path: String,
        /// Problem.
        reason: String,
    },
    /// A special token the family needs is absent.
    #[error("{path}: the vocabulary has no `{token}` token")]
    MissingToken {
        /// File.
        path: String,
        /// Token.
        token: String,
    },
}

/// One tokenised sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, specials included.
    pub ids: Vec<u32>,
    /// True for special tokens (removed from attention before counting).
    pub special: Vec<bool>,
    /// Segment ids (XLNet: 2 for `<cls>`).
    pub type_ids: Vec<u32>,
    /// Residues kept after truncation.
    pub residues: usize,
}

/// A protein tokenizer for one model family.
#[derive(Debug, Clone)]
pub struct ProteinTokenizer {
    family: Family,
    vocab: HashMap<String, u32>,
    /// Residue letter → id (for the 26 letters).
    letters: HashMap<char, u32>,
    unk: u32,
    pad: u32,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    /// Segment id of each suffix token.
    suffix_types: Vec<u32>,
}

/// SentencePiece model protobuf: only the pieces are needed.
#[derive(Clone, PartialEq, prost::Message)]
struct SentencePieceModel {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<SentencePiece>,
}

/// One SentencePiece vocabulary entry.
#[derive(Clone, PartialEq, prost::Message)]
struct SentencePiece {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

fn read_vocab_txt(path: &Path) -> Result<HashMap<String, u32>, TokenizerError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenizerError::Vocab {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (l.trim_end_matches('\r').to_string(), i as u32))
        .collect())
}

fn read_spiece(path: &Path) -> Result<HashMap<String, u32>, TokenizerError> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|e| TokenizerError::Vocab {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let model = SentencePieceModel::decode(bytes.as_slice()).map_err(|e| TokenizerError::Vocab {
        path: path.display().to_string(),
        reason: format!("not a SentencePiece model: {e}"),
    })?;
    Ok(model
        .pieces
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.piece.map(|s| (s, i as u32)))
        .collect())
}

/// Residue letters every vocabulary is asked for.
const LETTERS: &str = "ACDEFGHIKLMNPQRSTVWYXBZJUO";

impl ProteinTokenizer {
    /// Loads the vocabulary of a model directory for a family.
    pub fn load(dir: &Path, family: Family) -> Result<Self, TokenizerError> {
        let (file, vocab) = match family {
            Family::Bert | Family::TapeBert | Family::Esm => {
                let p = dir.join("vocab.txt");
                let v = read_vocab_txt(&p)?;
                (p, v)
            }
            Family::Albert | Family::XLNet | Family::T5 => {
                let p = dir.join("spiece.model");
                let v = read_spiece(&p)?;
                (p, v)
            }
        };
        Self::from_vocab(family, vocab, &file.display().to_string())
    }

    /// Builds a tokenizer from a token → id map.
    pub fn from_vocab(
        family: Family,
        vocab: HashMap<String, u32>,
        origin: &str,
    ) -> Result<Self, TokenizerError> {
        let id = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| TokenizerError::MissingToken {
                    path: origin.to_string(),
                    token: token.to_string(),
                })
        };
        let (unk, pad, prefix, suffix, suffix_types) = match family {
            Family::Bert => (
                id("[UNK]")?,
                id("[PAD]")?,
                vec![id("[CLS]")?],
                vec![id("[SEP]")?],
                vec![0],
            ),
            Family::TapeBert => (
                id("<unk>")?,
                id("<pad>")?,
                vec![id("<cls>")?],
                vec![id("<sep>")?],
                vec![0],
            ),
            Family::Albert => (
                id("<unk>")?,
                id("<pad>")?,
                vec![id("[CLS]")?],
                vec![id("[SEP]")?],
                vec![0],
            ),
            Family::XLNet => (
                id("<unk>")?,
                id("<pad>")?,
                vec![],
                vec![id("<sep>")?, id("<cls>")?],
                vec![0, 2],
            ),
            Family::Esm => (
                id("<unk>")?,
                id("<pad>")?,
                vec![id("<cls>")?],
                vec![id("<eos>")?],
                vec![0],
            ),
            Family::T5 => (id("<unk>")?, id("<pad>")?, vec![], vec![id("</s>")?], vec![0]),
        };
        let mut letters = HashMap::new();
        for c in LETTERS.chars() {
            let c_in = if Self::maps_rare_to_x(family) && matches!(c, 'U' | 'Z' | 'O' | 'B') {
                'X'
            } else {
                c
            };
            let found = [format!("\u{2581}{c_in}"), c_in.to_string()]
                .iter()
                .find_map(|t| vocab.get(t).copied());
            letters.insert(c, found.unwrap_or(unk));
        }
        Ok(Self {
            family,
            vocab,
            letters,
            unk,
            pad,
            prefix,
            suffix,
            suffix_types,
        })
    }

    /// ProtTrans models (ProtBert, ProtAlbert, ProtXLNet, ProtT5) map rare residues to X.
    fn maps_rare_to_x(family: Family) -> bool {
        matches!(family, Family::Bert | Family::Albert | Family::XLNet | Family::T5)
    }

    /// The family this tokenizer serves.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Id of a vocabulary token.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Number of special tokens added to every sequence.
    pub fn n_special(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }

    /// Tokenises a sequence, truncating residues so that the whole, specials
    /// included, fits in `max_len` tokens.
    pub fn encode(&self, sequence: &str, max_len: usize) -> Encoded {
        let keep = max_len.saturating_sub(self.n_special());
        let residues: Vec<u32> = sequence
            .chars()
            .take(keep)
            .map(|c| {
                self.letters
                    .get(&c.to_ascii_uppercase())
                    .copied()
                    .unwrap_or(self.unk)
            })
            .collect();
        let n = residues.len();
        let mut ids = self.prefix.clone();
        ids.extend(residues);
        ids.extend(&self.suffix);
        let mut special = vec![true; self.prefix.len()];
        special.extend(std::iter::repeat_n(false, n));
        special.extend(std::iter::repeat_n(true, self.suffix.len()));
        let mut type_ids = vec![0; self.prefix.len() + n];
        type_ids.extend(&self.suffix_types);
        Encoded {
            ids,
            special,
            type_ids,
            residues: n,
        }
    }

    /// True when the family pads on the left (XLNet).
    pub fn pads_left(&self) -> bool {
        self.family == Family::XLNet
    }

    /// Pads encoded sequences into one batch on `device` (to the longest).
    pub fn batch(&self, encoded: &[Encoded], device: &Device) -> candle_core::Result<ModelInput> {
        self.batch_to(encoded, 0, device)
    }

    /// Pads encoded sequences into one batch of at least `min_len` tokens.
    pub fn batch_to(
        &self,
        encoded: &[Encoded],
        min_len: usize,
        device: &Device,
    ) -> candle_core::Result<ModelInput> {
        let b = encoded.len();
        let t = encoded
            .iter()
            .map(|e| e.ids.len())
            .max()
            .unwrap_or(0)
            .max(min_len);
        let mut ids: Vec<u32> = Vec::with_capacity(b * t);
        let mut mask: Vec<u32> = Vec::with_capacity(b * t);
        let mut types: Vec<u32> = Vec::with_capacity(b * t);
        // XLNet marks padding with segment 3, as its tokenizer does.
        let pad_type = if self.family == Family::XLNet { 3 } else { 0 };
        for e in encoded {
            let pad = t - e.ids.len();
            let (pad_ids, pad_mask, pad_types) = (vec![self.pad; pad], vec![0u32; pad], vec![pad_type; pad]);
            let (real_mask, real_types) = (vec![1u32; e.ids.len()], e.type_ids.clone());
            if self.pads_left() {
                ids.extend(pad_ids.iter().chain(&e.ids));
                mask.extend(pad_mask.iter().chain(&real_mask));
                types.extend(pad_types.iter().chain(&real_types));
            } else {
                ids.extend(e.ids.iter().chain(&pad_ids));
                mask.extend(real_mask.iter().chain(&pad_mask));
                types.extend(real_types.iter().chain(&pad_types));
            }
        }
        let uses_types = matches!(
            self.family,
            Family::Bert | Family::TapeBert | Family::Albert | Family::XLNet
        );
        Ok(ModelInput {
            input_ids: Tensor::from_vec(ids, (b, t), device)?,
            attention_mask: Tensor::from_vec(mask, (b, t), device)?,
            token_type_ids: if uses_types {
                Some(Tensor::from_vec(types, (b, t), device)?)
            } else {
                None
            },
        })
    }
}
