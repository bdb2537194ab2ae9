#!/usr/bin/env python3
"""A tiny ESM-2 saved by transformers 5 (tests/fixtures/models/esm2_tf5).

transformers 5's save_pretrained names ESM's LayerNorm parameters
`encoder.layer.N.attention.LayerNorm.gamma` / `.beta`; headscan must load the
checkpoint as transformers itself does. The fixture holds config.json,
model.safetensors exactly as save_pretrained wrote it, the ESM vocabulary,
and `attentions.npy`: float32 [layers, heads, T, T] of `<cls> MKTAYIAKQR <eos>`
(specials kept), from output_attentions=True.

Usage (repository root): .venv-tf5/bin/python tests/golden/make_tf5_fixture.py
"""

import json
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import EsmConfig, EsmModel, EsmTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models" / "esm2_tf5"
SEQUENCE = "MKTAYIAKQR"

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "fixtures" / "models" / "esm2" / "vocab.txt", OUT / "vocab.txt")
    tok = EsmTokenizer(str(OUT / "vocab.txt"))
    torch.manual_seed(0)
    cfg = EsmConfig(vocab_size=33, hidden_size=40, num_hidden_layers=3, num_attention_heads=5,
                    intermediate_size=80, max_position_embeddings=64,
                    position_embedding_type="rotary", pad_token_id=1, mask_token_id=32,
                    token_dropout=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg._attn_implementation = "eager"
    model = EsmModel(cfg).eval()
    model.save_pretrained(OUT, safe_serialization=True)
    enc = tok([SEQUENCE], return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    np.save(OUT / "attentions.npy", torch.stack(out.attentions)[:, 0].numpy())
    (OUT / "cases.json").write_text(json.dumps({
        "sequence": SEQUENCE, "input_ids": enc["input_ids"].tolist(),
        "transformers": transformers.__version__, "torch": torch.__version__,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
