"""Benchmark inputs: two random models of real shapes and a 24-record slice
of the provis binding-site set.

  python make_inputs.py OUT CANONICAL_DATASET
  python make_inputs.py --labelled-structures OUT/structures.parquet STRUCTURES_DATASET

OUT/protbert_shape: BertModel, hidden 1024, 16 heads, 4 layers, intermediate
  4096, ProtBert vocabulary (ProtBert's shape, 4 of its 30 layers);
OUT/esm2_shape: EsmModel, hidden 1280, 20 heads, rotary, 4 layers,
  intermediate 5120 (ESM-2 650M's shape, 4 of its 33 layers);
OUT/slice.parquet: every 59th record of the canonical dataset (24 records),
  ids, sequences and binding sites, for `headscan ingest --format parquet`.
--labelled-structures: the first 24 chains of a canonical structures dataset
  (coordinates, hence contacts) with seeded synthetic DSSP labels and binding
  sites, so one dataset carries every feature of the overhead measurement
  (contact, ss4, binding_site, aa).
Weights are transformers' own random initialisation from a fixed seed with
initializer_range 0.07 (not 0.02), so heads are peaked like trained ones:
roughly half the query rows hold an arc of weight >= 0.3.
"""

import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch
from transformers import BertConfig, BertModel, EsmConfig, EsmModel

PROTBERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "L", "A", "G", "V", "E", "S",
                  "I", "K", "R", "D", "T", "P", "N", "Q", "F", "Y", "M", "H", "C", "W", "X",
                  "U", "B", "Z", "O"]
ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I",
             "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O",
             ".", "-", "<null_1>", "<mask>"]


def save(model, d: Path, vocab: list[str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")


def main(out: Path, dataset: Path) -> None:
    torch.manual_seed(0)
    bert = BertConfig(vocab_size=30, hidden_size=1024, num_hidden_layers=4, num_attention_heads=16,
                      intermediate_size=4096, hidden_act="gelu", max_position_embeddings=40000,
                      type_vocab_size=2, pad_token_id=0, initializer_range=0.07, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)
    save(BertModel(bert, add_pooling_layer=False).eval(), out / "protbert_shape", PROTBERT_VOCAB)
    esm = EsmConfig(vocab_size=33, hidden_size=1280, num_hidden_layers=4, num_attention_heads=20,
                    intermediate_size=5120, hidden_act="gelu", max_position_embeddings=1026,
                    position_embedding_type="rotary", emb_layer_norm_before=False,
                    token_dropout=True, pad_token_id=1, mask_token_id=32, initializer_range=0.07,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    save(EsmModel(esm, add_pooling_layer=False).eval(), out / "esm2_shape", ESM_VOCAB)
    shards = sorted((dataset / "shards").glob("*.parquet"))
    table = pq.read_table(shards[0], columns=["id", "sequence", "binding_sites"])
    pq.write_table(table.take(list(range(0, 24 * 59, 59))), out / "slice.parquet")


def labelled_structures(out: Path, dataset: Path) -> None:
    import random

    shards = sorted((dataset / "shards").glob("*.parquet"))
    rows = pq.read_table(shards[0]).to_pylist()[:24]
    rng = random.Random(7)
    for r in rows:
        n = len(r["sequence"])
        r["ss8"] = "".join(rng.choice("HHHEEGTSBC-") for _ in range(n))
        r["binding_sites"] = [i for i in range(n) if i % 11 == 3]
    keep = ["id", "sequence", "ca_coords", "resolved", "ss8", "binding_sites"]
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keep} for r in rows]), out)


if __name__ == "__main__":
    if sys.argv[1] == "--labelled-structures":
        labelled_structures(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
