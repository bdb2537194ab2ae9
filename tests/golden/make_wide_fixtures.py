#!/usr/bin/env python3
"""Golden fixtures at realistic width, for LayerNorm precision.

Tiny fixtures (hidden 32) never show what real checkpoints do: a residual
stream with a large mean, where a one-pass LayerNorm (E[x^2] - mean^2) loses
every digit. Here every family is built at a realistic width (ESM-2-shaped:
hidden 640, 20 heads, rotary; BERT-, ALBERT-, XLNet- and T5-shaped: 1024,
16 heads), twice: with word embeddings centred on 0, and offset by +50 (XLNet: the feed-forward output bias, see
below).

The weights are far too large to commit, so none are: every tensor is a pure
function of (tensor index, element index) through SplitMix64, and
`weights.json` lists each tensor's name, shape, scale and offset (or its
literal values, for buffers). worker/tests/golden_wide.rs rebuilds the same
float32 weights bit for bit (the arithmetic below is done in float32, op by
op, as the Rust side does it), writes model.safetensors and loads it through
headscan's ordinary loader.

For each fixture, expected.safetensors holds `layer{l}`: float32
[1, heads, T, T] — transformers' float32 attention at offset 0, and
transformers' float64 attention (rounded to float32) at offset 50 — and
cases.json records transformers' own float32 max error against float64 per
layer, the bound headscan is held to.

Usage (from the repository root, in the venv of tests/golden/requirements.txt):

    .venv/bin/python tests/golden/make_wide_fixtures.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import transformers
from transformers import (
    AlbertConfig, AlbertModel, BertConfig, BertModel, EsmConfig, EsmModel,
    T5Config, T5EncoderModel, XLNetConfig, XLNetModel,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import ROOT, hf_encode, prottrans_preprocess  # noqa: E402

from transformers import AlbertTokenizer, BertTokenizer, EsmTokenizer, T5Tokenizer, XLNetTokenizer  # noqa: E402

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()

SMALL = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "tests" / "fixtures" / "wide"
SEQUENCE = "MKTAYIAKQRQISFVKSH"  # 18 residues
OFFSETS = [0.0, 50.0]
SEED = 0x5EED_1A7E


def splitmix_uniform(tensor_index: int, n: int) -> np.ndarray:
    """u in [0, 1) with 24 bits, as float32: SplitMix64 of
    (SEED ^ tensor_index << 40) + element, top 24 bits / 2^24."""
    with np.errstate(over="ignore"):
        base = np.uint64(SEED) ^ (np.uint64(tensor_index) << np.uint64(40))
        z = base + np.arange(n, dtype=np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) / np.float32(16777216.0)


def generated(tensor_index: int, shape, scale: float, offset: float) -> np.ndarray:
    """offset + scale * (2u - 1), every step in float32."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = splitmix_uniform(tensor_index, n)
    v = (u * np.float32(2.0) - np.float32(1.0)) * np.float32(scale) + np.float32(offset)
    return v.astype(np.float32).reshape(shape)


def recipe_for(name: str, shape, offset: float, qk_names, qk_scale: float,
               offset_target) -> tuple[float, float]:
    """(scale, offset) of one tensor; `offset_target(name)` says which tensors
    carry the large mean."""
    last = name.rsplit(".", 1)[-1]
    is_norm = "LayerNorm" in name or "layer_norm" in name
    if is_norm and last in ("weight", "gamma"):
        return 0.1, 1.0
    if offset_target(name):
        return 1.0, offset
    if "word_embedding" in name or name in ("shared.weight", "encoder.embed_tokens.weight"):
        return 1.0, 0.0
    if "embeddings" in name:  # position / token-type embeddings
        return 0.5, 0.0
    if len(shape) <= 1:
        return 0.1, 0.0  # biases, XLNet's r_*_bias vectors are 2-D: below
    fan_in = shape[-1] if len(shape) == 2 else shape[0]
    s = float(np.sqrt(3.0 / fan_in))
    if any(q in name for q in qk_names):
        s *= qk_scale  # peaked attention, so thresholds are crossed
    if "relative_attention_bias" in name or name.endswith(("r_w_bias", "r_r_bias", "r_s_bias", "seg_embed")):
        return 0.5, 0.0
    return s, 0.0


def fill(model: torch.nn.Module, offset: float, qk_names, qk_scale: float, offset_target) -> list[dict]:
    """Overwrites every state-dict tensor with its generated values; returns
    the recipe. Buffers (rotary inv_freq) keep their values, recorded literally."""
    sd = model.state_dict()
    params = dict(model.named_parameters())
    recipe = []
    with torch.no_grad():
        for index, name in enumerate(sorted(sd)):
            t = sd[name]
            shape = list(t.shape)
            if name not in params:
                if any(t.data_ptr() == p.data_ptr() for p in params.values()):
                    continue  # a tied alias (T5's encoder.embed_tokens = shared)
                recipe.append({"name": name, "shape": shape,
                               "values": [float(x) for x in t.flatten().tolist()]})
                continue
            scale, off = recipe_for(name, shape, offset, qk_names, qk_scale, offset_target)
            params[name].copy_(torch.from_numpy(generated(index, shape, scale, off)))
            recipe.append({"name": name, "shape": shape, "index": index,
                           "scale": float(np.float32(scale)), "offset": float(np.float32(off))})
    return recipe


def word_embeddings(name: str) -> bool:
    """The tensors that carry the offset by default: the word embeddings."""
    return "word_embedding" in name or name in ("shared.weight", "encoder.embed_tokens.weight")


def families():
    esm_tok = lambda d: EsmTokenizer(str(d / "vocab.txt"))  # noqa: E731
    return {
        "esm2": dict(
            small="esm2", make=lambda: EsmModel(EsmConfig(
                vocab_size=33, hidden_size=640, num_hidden_layers=2, num_attention_heads=20,
                intermediate_size=2560, hidden_act="gelu", max_position_embeddings=64,
                position_embedding_type="rotary", emb_layer_norm_before=False, token_dropout=True,
                layer_norm_eps=1e-5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                pad_token_id=1, mask_token_id=32), add_pooling_layer=False),
            tok=esm_tok, pre=lambda s: s, tt=False, qk=("query", "key")),
        "bert": dict(
            small="bert", make=lambda: BertModel(BertConfig(
                vocab_size=30, hidden_size=1024, num_hidden_layers=2, num_attention_heads=16,
                intermediate_size=1024, hidden_act="gelu", max_position_embeddings=64,
                type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, pad_token_id=0), add_pooling_layer=False),
            tok=lambda d: BertTokenizer(str(d / "vocab.txt"), do_lower_case=False),
            pre=prottrans_preprocess, tt=True, qk=("query", "key")),
        "albert": dict(
            small="albert", make=lambda: AlbertModel(AlbertConfig(
                vocab_size=30, embedding_size=128, hidden_size=1024, num_hidden_layers=2,
                num_hidden_groups=1, inner_group_num=1, num_attention_heads=16,
                intermediate_size=1024, hidden_act="gelu_new", max_position_embeddings=64,
                type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0,
                pad_token_id=0, bos_token_id=2, eos_token_id=3), add_pooling_layer=False),
            tok=lambda d: AlbertTokenizer(str(d / "spiece.model"), do_lower_case=False,
                                          keep_accents=True, remove_space=True),
            pre=prottrans_preprocess, tt=True, qk=("query", "key")),
        "xlnet": dict(
            small="xlnet", make=lambda: XLNetModel(XLNetConfig(
                vocab_size=34, d_model=1024, n_layer=2, n_head=16, d_head=64, d_inner=1024,
                ff_activation="gelu", untie_r=True, attn_type="bi", layer_norm_eps=1e-12,
                dropout=0.0, mem_len=None, reuse_len=None, bi_data=False, clamp_len=-1,
                same_length=False, use_mems_eval=False, pad_token_id=5, bos_token_id=1,
                eos_token_id=2)),
            tok=lambda d: XLNetTokenizer(str(d / "spiece.model"), do_lower_case=False,
                                         keep_accents=True, remove_space=True),
            # XLNet's embeddings enter attention un-normalised, so an offset there
            # tests the conditioning of 1e4-sized scores, not LayerNorm: the
            # large residual mean is put where a post-LN model gets one, in the
            # bias feeding each feed-forward block's LayerNorm.
            pre=prottrans_preprocess, tt=True, qk=(".q", ".k", ".r"),
            offset_target=lambda n: n.endswith("ff.layer_2.bias")),
        "t5": dict(
            small="t5", make=lambda: T5EncoderModel(T5Config(
                vocab_size=28, d_model=1024, d_kv=64, d_ff=1024, num_layers=2, num_heads=16,
                relative_attention_num_buckets=32, relative_attention_max_distance=128,
                dropout_rate=0.0, layer_norm_epsilon=1e-6, feed_forward_proj="relu",
                is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1)),
            tok=lambda d: T5Tokenizer(str(d / "spiece.model"), do_lower_case=False, extra_ids=0,
                                      legacy=True),
            # T5 does not divide scores by sqrt(d_kv): q and k carry d_kv^-1/4 each.
            pre=prottrans_preprocess, tt=False, qk=(".q.", ".k."), qk_scale=2.0 * 64 ** -0.25),
    }


def attentions(model, ids, mask, tt):
    kwargs = dict(input_ids=ids, attention_mask=mask, output_attentions=True)
    if tt is not None:
        kwargs["token_type_ids"] = tt
    if isinstance(model, XLNetModel):
        kwargs["use_mems"] = False
    with torch.no_grad():
        return [a.detach().clone() for a in model(**kwargs).attentions]


def make(name: str, spec: dict, offset: float) -> None:
    d = OUT / f"{name}_offset{int(offset)}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    small = SMALL / spec["small"]
    for f in sorted(small.iterdir()):
        if f.name in ("vocab.txt", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(f, d / f.name)
    torch.manual_seed(0)
    model = spec["make"]()
    if hasattr(model.config, "_attn_implementation"):
        model.config._attn_implementation = "eager"
    model = model.eval()
    recipe = fill(model, offset, spec["qk"], spec.get("qk_scale", 2.0),
                  spec.get("offset_target", word_embeddings))
    model.config.to_json_file(str(d / "config.json"))
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (d / "weights.json").write_text(json.dumps({"seed": SEED, "tensors": recipe}) + "\n")

    tok = spec["tok"](d)
    ids, mask, tt, tokens = hf_encode(tok, spec["pre"], spec["tt"])([SEQUENCE])
    a32 = attentions(model, ids, mask, tt)
    a64 = attentions(model.double(), ids, mask, tt)
    err32 = [float((x.double() - y).abs().max()) for x, y in zip(a32, a64)]
    want = a32 if offset == 0.0 else [y.float() for y in a64]
    save_file({f"layer{l}": w.contiguous() for l, w in enumerate(want)}, str(d / "expected.safetensors"),
              metadata={"reference": "float32" if offset == 0.0 else "float64"})
    nan = any(bool(torch.isnan(x).any()) for x in a32)
    doc = {
        "family": name, "offset": offset, "sequence": SEQUENCE, "tokens": tokens[0],
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
        "token_type_ids": tt.tolist() if tt is not None else None,
        "reference": "transformers float32" if offset == 0.0 else "transformers float64",
        "transformers_f32_max_error_vs_f64": err32,
        "transformers_f32_has_nan": nan,
        "transformers": transformers.__version__, "torch": torch.__version__,
    }
    (d / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")
    size = sum(f.stat().st_size for f in d.iterdir())
    print(f"{d.name}: f32 vs f64 max error per layer {['%.2e' % e for e in err32]}, {size / 1024:.0f} KiB")


def main(argv: list[str]) -> int:
    specs = families()
    names = argv or list(specs)
    for n in names:
        for off in OFFSETS:
            make(n, specs[n], off)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
