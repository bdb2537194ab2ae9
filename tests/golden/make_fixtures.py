#!/usr/bin/env python3
"""Generate tiny random-weight protein language models and golden attention fixtures.

Usage (from the repository root):

    python3 -m venv .venv
    .venv/bin/pip install -r tests/golden/requirements.txt
    .venv/bin/python tests/golden/make_fixtures.py            # all families
    .venv/bin/python tests/golden/make_fixtures.py bert esm2  # a subset

For every family a directory tests/fixtures/models/<name>/ is written with

* config.json, model.safetensors, pytorch_model.bin (torch.save of the same
  state dict as model.safetensors) and the vocabulary files;
* attentions.safetensors: `case{c}.layer{l}` float32 [batch, heads, T, T]
  (the attention probabilities transformers returns with
  output_attentions=True), `case{c}.input_ids` int64 [batch, T],
  `case{c}.attention_mask` int64 [batch, T], `case{c}.token_type_ids` int64
  [batch, T] where the tokenizer produces them, and `case{c}.hidden` float32
  [batch, T, hidden] (last hidden state) for bert and esm2 only;
* cases.json describing every case (raw sequences, tokens, tensor names).

Everything is deterministic: fixed seeds, a private torch.Generator for the
weights, one CPU thread, and sorted/fixed metadata in every file written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import transformers
from transformers import (
    AlbertConfig,
    AlbertModel,
    AlbertTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizer,
    EsmConfig,
    EsmModel,
    EsmTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
    XLNetConfig,
    XLNetModel,
    XLNetTokenizer,
)
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "models"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
transformers.logging.set_verbosity_error()

# Inputs recorded for every family. Case 2 holds the rare letters X U B Z O;
# case 3 is one padded batch of three sequences of lengths 5, 9 and 14.
CASES = [
    ["MKTAYIAKQR"],
    ["GSHMLEDPVAGK"],
    ["MKXUBAGZOL"],
    ["MKTAY", "GSHMLEDPV", "ACDEFGHIKLMNPQ"],
]

PROTBERT_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "L", "A", "G", "V", "E", "S", "I", "K", "R", "D", "T", "P", "N", "Q",
    "F", "Y", "M", "H", "C", "W", "X", "U", "B", "Z", "O",
]
TAPE_IUPAC_VOCAB = ["<pad>", "<mask>", "<cls>", "<sep>", "<unk>"] + list(
    "ABCDEFGHIKLMNOPQRSTUVWXYZ"
)
ESM_VOCAB = [
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N",
    "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
    "<null_1>", "<mask>",
]
# Residue order of the ProtTrans sentencepiece vocabularies (ProtT5 order).
PROTTRANS_RESIDUES = list("ALGVSREDTIPKFQNYMHWCXBOUZ")


def prottrans_preprocess(seq: str) -> str:
    """ProtTrans (ProtBert/ProtAlbert/ProtXLNet/ProtT5) input convention:
    rare residues U Z O B become X and residues are separated by spaces."""
    return " ".join(re.sub(r"[UZOB]", "X", seq))


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def randomize(model: nn.Module, seed: int, std: float = 0.2, emb_std: float = 0.5) -> None:
    """Re-initialise every parameter from a private generator.

    Linear-like weights ~ N(0, std), embeddings ~ N(0, emb_std), biases ~
    N(0, 0.1), norm weights ~ 1 + N(0, 0.1), norm biases ~ N(0, 0.1), so
    identity LayerNorms or zero biases cannot make a test pass by accident."""
    g = torch.Generator().manual_seed(seed)
    norm_params = set()
    emb_params = set()
    for mod in model.modules():
        if isinstance(mod, nn.LayerNorm) or type(mod).__name__.endswith("LayerNorm"):
            for p in mod.parameters(recurse=False):
                norm_params.add(id(p))
        if isinstance(mod, nn.Embedding):
            emb_params.add(id(mod.weight))
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied params appear once
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if id(p) in norm_params:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * noise)
                else:
                    p.copy_(0.1 * noise)
            elif id(p) in emb_params:
                p.copy_(emb_std * noise)
            elif name.endswith("bias") or p.dim() == 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(std * noise)


def write_spiece(path: Path, specials: list[tuple[str, str]], residues: list[str],
                 ids: dict[str, int]) -> None:
    """Write a unigram sentencepiece model by hand.

    specials: (piece, type) with type in CONTROL/UNKNOWN/USER_DEFINED.
    residues: letters; each becomes the piece "▁<letter>" so that a
    space-separated protein "M K T" encodes to exactly one piece per residue.
    ids: unk_id/bos_id/eos_id/pad_id for the trainer spec (-1 = none)."""
    m = sp_pb2.ModelProto()
    types = {
        "NORMAL": sp_pb2.ModelProto.SentencePiece.NORMAL,
        "UNKNOWN": sp_pb2.ModelProto.SentencePiece.UNKNOWN,
        "CONTROL": sp_pb2.ModelProto.SentencePiece.CONTROL,
        "USER_DEFINED": sp_pb2.ModelProto.SentencePiece.USER_DEFINED,
    }
    for piece, typ in specials:
        p = m.pieces.add()
        p.piece = piece
        p.score = 0.0
        p.type = types[typ]
    for i, r in enumerate(residues):
        p = m.pieces.add()
        p.piece = "\u2581" + r
        p.score = -1.0 - 0.01 * i
        p.type = types["NORMAL"]
    ts = m.trainer_spec
    ts.model_type = sp_pb2.TrainerSpec.UNIGRAM
    ts.vocab_size = len(m.pieces)
    ts.unk_id = ids.get("unk_id", -1)
    ts.bos_id = ids.get("bos_id", -1)
    ts.eos_id = ids.get("eos_id", -1)
    ts.pad_id = ids.get("pad_id", -1)
    for key in ("unk", "bos", "eos", "pad"):
        i = ids.get(f"{key}_id", -1)
        if i >= 0:
            setattr(ts, f"{key}_piece", m.pieces[i].piece)
    ts.byte_fallback = False
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = True
    ns.escape_whitespaces = True
    path.write_bytes(m.SerializeToString(deterministic=True))


def save_weights(model: nn.Module, d: Path, config_dict: dict | None = None) -> None:
    """save_pretrained (config.json + model.safetensors), then pytorch_model.bin
    holding exactly the tensors of model.safetensors."""
    model.save_pretrained(d, safe_serialization=True)
    if config_dict is not None:
        (d / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    gen = d / "generation_config.json"
    if gen.exists():
        gen.unlink()
    sd = load_file(str(d / "model.safetensors"))
    torch.save({k: sd[k] for k in sorted(sd)}, d / "pytorch_model.bin")


def fresh_dir(name: str) -> Path:
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def record(d: Path, family: str, notes: dict, encode, forward, hidden: bool) -> None:
    """encode(seqs) -> (input_ids, attention_mask, token_type_ids|None, tokens)
    forward(ids, mask, tt) -> transformers output with .attentions (and
    .last_hidden_state when hidden)."""
    tensors: dict[str, torch.Tensor] = {}
    cases = []
    for c, seqs in enumerate(CASES):
        ids, mask, tt, tokens = encode(seqs)
        with torch.no_grad():
            out = forward(ids, mask, tt)
        names = {"input_ids": f"case{c}.input_ids", "attention_mask": f"case{c}.attention_mask"}
        tensors[names["input_ids"]] = ids.to(torch.int64).contiguous()
        tensors[names["attention_mask"]] = mask.to(torch.int64).contiguous()
        if tt is not None:
            names["token_type_ids"] = f"case{c}.token_type_ids"
            tensors[names["token_type_ids"]] = tt.to(torch.int64).contiguous()
        layers = []
        B, T = ids.shape
        for l, a in enumerate(out.attentions):
            assert a.dtype == torch.float32
            assert a.shape[0] == B and a.shape[2] == T and a.shape[3] == T, (family, a.shape)
            n = f"case{c}.layer{l}"
            tensors[n] = a.contiguous().clone()
            layers.append(n)
        names["attentions"] = layers
        if hidden:
            names["hidden"] = f"case{c}.hidden"
            tensors[names["hidden"]] = out.last_hidden_state.contiguous().clone()
        cases.append({
            "case": c,
            "sequences": seqs,
            "tokens": tokens,
            "input_ids": ids.tolist(),
            "batch": B,
            "seq_len": T,
            "num_heads": int(out.attentions[0].shape[1]),
            "num_layers": len(out.attentions),
            "tensors": names,
        })
    save_file(tensors, str(d / "attentions.safetensors"), metadata={"family": family})
    doc = {"family": family, "transformers": transformers.__version__,
           "torch": torch.__version__, **notes, "cases": cases}
    (d / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")


def hf_encode(tok, pre, token_types: bool):
    def encode(seqs):
        texts = [pre(s) for s in seqs]
        enc = tok(texts, padding=True, return_tensors="pt", return_token_type_ids=token_types)
        tokens = [tok.convert_ids_to_tokens(row) for row in enc["input_ids"].tolist()]
        return enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"), tokens
    return encode


# --------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------


def make_bert() -> None:
    d = fresh_dir("bert")
    (d / "vocab.txt").write_text("\n".join(PROTBERT_VOCAB) + "\n")
    tok = BertTokenizer(str(d / "vocab.txt"), do_lower_case=False)
    tok.save_pretrained(d)
    torch.manual_seed(1)
    cfg = BertConfig(
        vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", max_position_embeddings=40,
        type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    model = BertForMaskedLM(cfg).eval()
    randomize(model, seed=101)
    save_weights(model, d)
    record(d, "bert", {
        "model_class": "BertForMaskedLM (ProtBert layout: bert.* + cls.predictions.*)",
        "tokenization": "ProtBert: U/Z/O/B -> X, residues space-separated, BertTokenizer(do_lower_case=False): [CLS] seq [SEP], right padding with [PAD]=0",
    }, hf_encode(tok, prottrans_preprocess, True),
        lambda ids, m, tt: model.bert(input_ids=ids, attention_mask=m, token_type_ids=tt,
                                      output_attentions=True),
        hidden=True)


def make_tape_bert() -> None:
    d = fresh_dir("tape_bert")
    (d / "vocab.txt").write_text("\n".join(TAPE_IUPAC_VOCAB) + "\n")
    hidden, layers, heads, inter = 36, 2, 3, 72
    tape_cfg = {
        # exactly the keys ProteinBertConfig(...).to_json_string() writes
        "attention_probs_dropout_prob": 0.0,
        "finetuning_task": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 40,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_labels": 2,
        "output_attentions": False,
        "output_hidden_states": False,
        "torchscript": False,
        "type_vocab_size": 1,
        "vocab_size": 30,
    }
    torch.manual_seed(2)
    cfg = BertConfig(
        vocab_size=30, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=inter, hidden_act="gelu",
        max_position_embeddings=40, type_vocab_size=1, layer_norm_eps=1e-12,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    model = BertModel(cfg, add_pooling_layer=True).eval()
    randomize(model, seed=202)
    # TAPE's ProteinBertForMaskedLM checkpoint: bert.* (ProteinBertModel with
    # pooler) + mlm.* (MLMHead: transform.dense, transform.LayerNorm, decoder
    # tied to the word embeddings, bias).
    g = torch.Generator().manual_seed(203)
    sd = {f"bert.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    sd["mlm.transform.dense.weight"] = 0.2 * torch.randn(hidden, hidden, generator=g)
    sd["mlm.transform.dense.bias"] = 0.1 * torch.randn(hidden, generator=g)
    sd["mlm.transform.LayerNorm.weight"] = 1.0 + 0.1 * torch.randn(hidden, generator=g)
    sd["mlm.transform.LayerNorm.bias"] = 0.1 * torch.randn(hidden, generator=g)
    sd["mlm.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"].clone()
    sd["mlm.bias"] = 0.1 * torch.randn(30, generator=g)
    sd = {k: sd[k] for k in sorted(sd)}
    torch.save(sd, d / "pytorch_model.bin")
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(tape_cfg, indent=2, sort_keys=True) + "\n")

    vocab = {t: i for i, t in enumerate(TAPE_IUPAC_VOCAB)}

    def encode(seqs):
        # tape.tokenizers.TAPETokenizer('iupac'): list(seq) -> ids, then
        # <cls> ... <sep>; unknown letters -> <unk>; batches padded with 0 on
        # the right (tape.datasets.pad_sequences), input_mask = 1 on tokens.
        toks = [["<cls>"] + list(s) + ["<sep>"] for s in seqs]
        T = max(len(t) for t in toks)
        ids = torch.zeros(len(seqs), T, dtype=torch.int64)
        mask = torch.zeros(len(seqs), T, dtype=torch.int64)
        tokens = []
        for b, t in enumerate(toks):
            ids[b, : len(t)] = torch.tensor([vocab.get(x, vocab["<unk>"]) for x in t])
            mask[b, : len(t)] = 1
            tokens.append(t + ["<pad>"] * (T - len(t)))
        return ids, mask, None, tokens

    record(d, "tape_bert", {
        "model_class": "TAPE ProteinBertForMaskedLM checkpoint (bert.* + mlm.*), built and run as HF BertModel",
        "tokenization": "TAPE iupac: <cls> residues <sep> (no X mapping; U/B/Z/O/X are real tokens), right padding with <pad>=0",
    }, encode,
        lambda ids, m, tt: model(input_ids=ids, attention_mask=m, output_attentions=True),
        hidden=False)
    (d / "README.md").write_text(README_TAPE)


README_TAPE = """# tape_bert fixture

A tiny random-weight model in the checkpoint layout of TAPE's
`ProteinBertForMaskedLM` (songlab-cal/tape, `tape/models/modeling_bert.py`).

* `config.json` has exactly the keys `ProteinBertConfig.to_json_string()`
  writes (no `model_type`, no `architectures`).
* Weights: `bert.embeddings.{word,position,token_type}_embeddings.weight`,
  `bert.embeddings.LayerNorm.*`, `bert.encoder.layer.N.attention.self.{query,key,value}.*`,
  `...attention.output.{dense,LayerNorm}.*`, `...intermediate.dense.*`,
  `...output.{dense,LayerNorm}.*`, `bert.pooler.dense.*`, plus TAPE's MLM
  head `mlm.transform.{dense,LayerNorm}.*`, `mlm.decoder.weight` (a copy of the
  word embeddings, as TAPE ties them) and `mlm.bias`. Stored both as
  `pytorch_model.bin` (what TAPE ships) and `model.safetensors` (same tensors).
* `vocab.txt` is TAPE's `IUPAC_VOCAB` in id order (TAPE itself hard-codes it).
* How it was made: an HF `BertModel` (eager attention, type_vocab_size=1) was
  randomly initialised (seeded), its state dict was saved under the `bert.`
  prefix and the MLM head added. TAPE's attention is the same computation as HF
  BERT: scores / sqrt(head_dim) + mask, softmax. TAPE's mask value is -10000
  where HF uses finfo(float32).min; both give exactly 0 probability on padded
  keys in float32. GELU is the erf form in both. Position ids are 0..T-1 and
  token types are all 0.
* Tokenization (by hand, as `TAPETokenizer('iupac')`): `<cls>` + one token per
  letter + `<sep>`, unknown letters -> `<unk>`, right padding with `<pad>`=0.
* `attentions.safetensors` / `cases.json`: see tests/golden/make_fixtures.py.
"""


def make_albert() -> None:
    d = fresh_dir("albert")
    specials = [("<pad>", "CONTROL"), ("<unk>", "UNKNOWN"), ("[CLS]", "CONTROL"),
                ("[SEP]", "CONTROL"), ("[MASK]", "CONTROL")]
    write_spiece(d / "spiece.model", specials, PROTTRANS_RESIDUES,
                 {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3})
    tok = AlbertTokenizer(str(d / "spiece.model"), do_lower_case=False, keep_accents=True,
                          remove_space=True)
    tok.save_pretrained(d)
    vocab = len(specials) + len(PROTTRANS_RESIDUES)
    torch.manual_seed(3)
    cfg = AlbertConfig(
        vocab_size=vocab, embedding_size=16, hidden_size=48, num_hidden_layers=3,
        num_hidden_groups=1, inner_group_num=1, num_attention_heads=3,
        intermediate_size=96, hidden_act="gelu_new", max_position_embeddings=40,
        type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0,
        pad_token_id=0, bos_token_id=2, eos_token_id=3,
    )
    cfg._attn_implementation = "eager"
    model = AlbertModel(cfg).eval()
    randomize(model, seed=303)
    save_weights(model, d)
    record(d, "albert", {
        "model_class": "AlbertModel (embedding_size 16 -> hidden 48, 3 layers sharing one layer group)",
        "tokenization": "ProtAlbert: U/Z/O/B -> X, residues space-separated, AlbertTokenizer on spiece.model (pieces '\u2581A' ...): [CLS] seq [SEP], right padding with <pad>=0",
    }, hf_encode(tok, prottrans_preprocess, True),
        lambda ids, m, tt: model(input_ids=ids, attention_mask=m, token_type_ids=tt,
                                 output_attentions=True),
        hidden=False)


def make_xlnet() -> None:
    d = fresh_dir("xlnet")
    specials = [("<unk>", "UNKNOWN"), ("<s>", "CONTROL"), ("</s>", "CONTROL"),
                ("<cls>", "CONTROL"), ("<sep>", "CONTROL"), ("<pad>", "CONTROL"),
                ("<mask>", "CONTROL"), ("<eod>", "CONTROL"), ("<eop>", "CONTROL")]
    write_spiece(d / "spiece.model", specials, PROTTRANS_RESIDUES,
                 {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": 5})
    tok = XLNetTokenizer(str(d / "spiece.model"), do_lower_case=False, keep_accents=True,
                         remove_space=True)
    tok.save_pretrained(d)
    vocab = len(specials) + len(PROTTRANS_RESIDUES)
    torch.manual_seed(4)
    cfg = XLNetConfig(
        vocab_size=vocab, d_model=32, n_layer=2, n_head=4, d_head=8, d_inner=64,
        ff_activation="gelu", untie_r=True, attn_type="bi", layer_norm_eps=1e-12,
        dropout=0.0, mem_len=None, reuse_len=None, bi_data=False, clamp_len=-1,
        same_length=False, use_mems_eval=False, pad_token_id=5, bos_token_id=1,
        eos_token_id=2,
    )
    model = XLNetModel(cfg).eval()
    randomize(model, seed=404)
    save_weights(model, d)
    record(d, "xlnet", {
        "model_class": "XLNetModel (relative attention, untie_r, attn_type bi; content stream only)",
        "tokenization": "ProtXLNet: U/Z/O/B -> X, residues space-separated, XLNetTokenizer on spiece.model: seq <sep> <cls>, LEFT padding with <pad>=5; token_type_ids 0 for seq and <sep>, 2 for <cls>, 3 for pads",
    }, hf_encode(tok, prottrans_preprocess, True),
        lambda ids, m, tt: model(input_ids=ids, attention_mask=m, token_type_ids=tt,
                                 output_attentions=True, use_mems=False),
        hidden=False)


def make_esm(name: str, absolute: bool) -> None:
    d = fresh_dir(name)
    (d / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    tok = EsmTokenizer(str(d / "vocab.txt"))
    tok.save_pretrained(d)
    torch.manual_seed(5 if not absolute else 6)
    if absolute:  # ESM-1b style
        cfg = EsmConfig(
            vocab_size=33, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_act="gelu", max_position_embeddings=40,
            position_embedding_type="absolute", emb_layer_norm_before=True,
            token_dropout=True, layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, pad_token_id=1, mask_token_id=32,
        )
    else:  # ESM-2 style
        cfg = EsmConfig(
            vocab_size=33, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_act="gelu", max_position_embeddings=40,
            position_embedding_type="rotary", emb_layer_norm_before=False,
            token_dropout=True, layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, pad_token_id=1, mask_token_id=32,
        )
    cfg._attn_implementation = "eager"
    model = EsmModel(cfg, add_pooling_layer=True).eval()
    randomize(model, seed=505 if not absolute else 606)
    save_weights(model, d)
    record(d, name, {
        "model_class": "EsmModel (" + ("ESM-1b style: learned absolute positions offset by padding_idx+1, emb_layer_norm_before"
                                       if absolute else "ESM-2 style: rotary") + ", token_dropout=True)",
        "tokenization": "ESM: EsmTokenizer, one token per letter (no X mapping): <cls> seq <eos>, right padding with <pad>=1",
    }, hf_encode(tok, lambda s: s, False),
        lambda ids, m, tt: model(input_ids=ids, attention_mask=m, output_attentions=True),
        hidden=not absolute)


def make_t5() -> None:
    d = fresh_dir("t5")
    specials = [("<pad>", "CONTROL"), ("</s>", "CONTROL"), ("<unk>", "UNKNOWN")]
    write_spiece(d / "spiece.model", specials, PROTTRANS_RESIDUES,
                 {"pad_id": 0, "eos_id": 1, "unk_id": 2})
    tok = T5Tokenizer(str(d / "spiece.model"), do_lower_case=False, extra_ids=0, legacy=True)
    tok.save_pretrained(d)
    vocab = len(specials) + len(PROTTRANS_RESIDUES)
    torch.manual_seed(7)
    cfg = T5Config(
        vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128,
        dropout_rate=0.0, layer_norm_epsilon=1e-6, feed_forward_proj="relu",
        is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1,
    )
    model = T5EncoderModel(cfg).eval()
    randomize(model, seed=707, std=0.1)
    save_weights(model, d)
    record(d, "t5", {
        "model_class": "T5EncoderModel (ProtT5 encoder: relative position bias in layer 0 shared by all layers, RMS T5LayerNorm, relu FFN)",
        "tokenization": "ProtT5: U/Z/O/B -> X, residues space-separated, T5Tokenizer on spiece.model (extra_ids=0): seq </s>, right padding with <pad>=0",
    }, hf_encode(tok, prottrans_preprocess, False),
        lambda ids, m, tt: model(input_ids=ids, attention_mask=m, output_attentions=True),
        hidden=False)


FAMILIES = {
    "bert": make_bert,
    "tape_bert": make_tape_bert,
    "albert": make_albert,
    "xlnet": make_xlnet,
    "esm2": lambda: make_esm("esm2", absolute=False),
    "esm1b": lambda: make_esm("esm1b", absolute=True),
    "t5": make_t5,
}


def main(argv: list[str]) -> int:
    names = argv or list(FAMILIES)
    for n in names:
        if n not in FAMILIES:
            print(f"unknown family {n}; known: {', '.join(FAMILIES)}", file=sys.stderr)
            return 2
    for n in names:
        FAMILIES[n]()
        d = OUT / n
        size = sum(f.stat().st_size for f in d.iterdir())
        print(f"{n}: {size / 1024:.1f} KiB in {d.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
