//! headscan's worker: runs protein language models on candle and turns their
//! attention into per-head partial counts.
//!
//! Overview:
//! - [`models`]: one file per model family (BERT incl. TAPE, ALBERT, XLNet,
//!   ESM-2/ESM-1b, T5 encoder), each returning per-layer attention
//!   probabilities `[batch, heads, T, T]` equal to Hugging Face transformers
//!   with `output_attentions=True`;
//! - [`weights`]: `config.json` + safetensors (sharded too) or `pytorch_model.bin`;
//! - [`tokenizer`]: each model's own tokenisation of protein sequences;
//! - [`npy`]: `.npy` output of attention tensors;
//! - [`attention_pairs`]: pair features of the attention contact probes;
//! - [`extract`]: per-residue embeddings of chosen layers (`headscan extract`);
//! - [`probe`]: probe stages on a shard (extract tables; class counts,
//!   gradients and Hessians, validation counts of a linear probe);
//! - [`pull`]: the pull loop of `headscan worker` (lease, heartbeat, report);
//! - [`fetch`]: models on object stores, cached locally; [`digest`]: the
//!   model digest over every file that defines a model.
//!
//! It must not plan or schedule work, nor parse input formats: it reads
//! canonical records (`headscan-proto`) and reports counts or probe
//! statistics; folding them and Newton steps are the coordinator side's.
//!
//! ```no_run
//! use headscan_worker::models::load_model;
//! let model = load_model(std::path::Path::new("models/prot_bert"), &candle_core::Device::Cpu)?;
//! let input = model.tokenizer.batch(&[model.tokenizer.encode("MKTAYIAKQR", 512)], &candle_core::Device::Cpu)?;
//! let out = model.model.forward(&input, false)?;
//! assert_eq!(out.attentions.len(), model.model.n_layers());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod analysis;
pub mod attention;
pub mod attention_pairs;
pub mod digest;
pub mod extract;
pub mod fetch;
pub mod models;
pub mod npy;
pub mod probe;
pub mod pull;
pub mod shard;
pub mod tokenizer;
pub mod weights;
