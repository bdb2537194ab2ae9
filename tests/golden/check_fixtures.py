#!/usr/bin/env python3
"""Re-load every fixture from disk and check it reproduces its golden tensors.

    .venv/bin/python tests/golden/check_fixtures.py

For each family: the saved tokenizer (slow class, and the fast one where
transformers converts it) must give the recorded input_ids, and the model
re-loaded from the saved files (model.safetensors, and pytorch_model.bin
separately) must give the recorded attentions / hidden states exactly.
tape_bert is re-loaded by stripping the `bert.` prefix into an HF BertModel.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import transformers
from transformers import (
    AlbertModel, AlbertTokenizer, AutoTokenizer, BertConfig, BertForMaskedLM,
    BertModel, BertTokenizer, EsmModel, EsmTokenizer, T5EncoderModel,
    T5Tokenizer, XLNetModel, XLNetTokenizer,
)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models"
torch.set_num_threads(1)
transformers.logging.set_verbosity_error()


def prottrans(s: str) -> str:
    return " ".join(re.sub(r"[UZOB]", "X", s))


FAMILIES = {
    # name: (model class, slow tokenizer class, preprocess, uses token types)
    "bert": (BertForMaskedLM, BertTokenizer, prottrans, True),
    "albert": (AlbertModel, AlbertTokenizer, prottrans, True),
    "xlnet": (XLNetModel, XLNetTokenizer, prottrans, True),
    "esm2": (EsmModel, EsmTokenizer, lambda s: s, False),
    "esm1b": (EsmModel, EsmTokenizer, lambda s: s, False),
    "t5": (T5EncoderModel, T5Tokenizer, prottrans, False),
}


def run(model, name, ids, mask, tt):
    kw = dict(input_ids=ids, attention_mask=mask, output_attentions=True)
    if tt is not None:
        kw["token_type_ids"] = tt
    if name == "bert":
        model = model.bert
    if name == "xlnet":
        kw["use_mems"] = False
    with torch.no_grad():
        return model(**kw)


def tape_bert(d: Path, fname: str = "model.safetensors") -> BertModel:
    """The TAPE ProteinBert fixture as an HF BertModel: TAPE's config keys,
    the weights of `fname` with their `bert.` prefix stripped."""
    tc = json.loads((d / "config.json").read_text())
    cfg = BertConfig(**{k: tc[k] for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "hidden_act", "max_position_embeddings",
        "type_vocab_size", "layer_norm_eps")})
    cfg._attn_implementation = "eager"
    sd = (load_file(str(d / fname)) if fname.endswith("safetensors")
          else torch.load(d / fname, weights_only=True))
    m = BertModel(cfg).eval()
    m.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("bert.")})
    return m


def main() -> int:
    bad = 0
    for name in ["bert", "tape_bert", "albert", "xlnet", "esm2", "esm1b", "t5"]:
        d = OUT / name
        gold = load_file(str(d / "attentions.safetensors"))
        doc = json.loads((d / "cases.json").read_text())
        models = {}
        if name == "tape_bert":
            for fname in ("model.safetensors", "pytorch_model.bin"):
                models[fname] = tape_bert(d, fname)
        else:
            cls, tok_cls, pre, _ = FAMILIES[name]
            for st in (True, False):
                m = cls.from_pretrained(d, use_safetensors=st, attn_implementation="eager")
                models["model.safetensors" if st else "pytorch_model.bin"] = m.eval()
            toks = {"slow": tok_cls.from_pretrained(d)}
            try:
                toks["fast"] = AutoTokenizer.from_pretrained(d, use_fast=True)
            except Exception as e:  # noqa: BLE001
                print(f"  {name}: no fast tokenizer ({type(e).__name__})")
            for kind, tok in toks.items():
                for case in doc["cases"]:
                    ids = tok([pre(s) for s in case["sequences"]], padding=True)["input_ids"]
                    if ids != case["input_ids"]:
                        print(f"  {name}: {kind} tokenizer ({type(tok).__name__}) differs on case {case['case']}: {ids}")
                        bad += kind == "slow"
        worst = 0.0
        for fname, m in models.items():
            for case in doc["cases"]:
                t = case["tensors"]
                tt = gold.get(t.get("token_type_ids", ""))
                out = run(m, name, gold[t["input_ids"]], gold[t["attention_mask"]], tt)
                for l, n in enumerate(t["attentions"]):
                    worst = max(worst, (out.attentions[l] - gold[n]).abs().max().item())
                if "hidden" in t:
                    h = out.last_hidden_state
                    worst = max(worst, (h - gold[t["hidden"]]).abs().max().item())
        print(f"{name}: max |reloaded - golden| = {worst:.3g} over {list(models)}")
        bad += worst > 1e-6
    print("OK" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
