#!/usr/bin/env python3
"""Golden attention of a real, trained checkpoint: AntiBERTy, by transformers.

Usage (from the repository root, with the venv of tests/golden/requirements.txt):

    scripts/fetch-model.sh antiberty ~/.cache/headscan/models/antiberty
    .venv/bin/python tests/golden/antiberty_expected.py ~/.cache/headscan/models/antiberty

Writes tests/fixtures/antiberty/ (committed; `tests/antiberty.rs` compares
headscan against it, so the test needs no Python):

* expected.json: the model's source (wheel SHA-256 as pinned in
  scripts/fetch-model.sh), the versions used, the two sequences, their
  token ids, the query rows stored, and what transformers' loader reported
  (`missing_keys`, `unexpected_keys`: the checkpoint's extra `cls.*` heads);
* `<name>.rows.npy`: float32 [layers, heads, R, L], the attention of R query
  residues (rows listed in expected.json) to every residue key, for all 64
  heads;
* `<name>.key_mean.npy`: float32 [layers, heads, L], the attention each
  residue key receives, averaged over all L residue queries; together with
  the rows this checks every query row without storing [8, 8, L, L]
  (3.7 MB per chain).

Attention is transformers' `BertModel` (eager attention, float32, eval mode,
`output_attentions=True`) with the special-token rows and columns ([CLS],
[SEP]) removed, not renormalised: exactly what `headscan attention` writes.

The two sequences are the heavy- and light-chain variable regions used as
examples in AntiBERTy's own README (PyPI `antiberty==0.1.3`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import BertModel, BertTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "antiberty"

SEQUENCES = {
    "heavy": "EVQLVQSGPEVKKPGTSVKVSCKASGFTFMSSAVQWVRQARGQRLEWIGWIVIGSGNTNYAQKFQERVTITRDMSTSTAYMELSSLRSEDTAVYYCAAPYCSSISCNDGFDIWGQGTMVTVS",
    "light": "DVVMTQTPFSLPVSLGDQASISCRSSQSLVHSNGNTYLHWYLQKPGQSPKLLIYKVSNRFSGVPDRFSGSGSGTDFTLKISRVEAEDLGVYFCSQSTHVPYTFGGGTKLEIK",
}
WHEEL_SHA256 = "30d910992b190013871bac49cdc032e01a19339f7d2b958ab99b0eb44638352a"


def rows_for(length: int) -> list[int]:
    """Four query residues spread over the chain: first, thirds, last."""
    return sorted({0, length // 3, (2 * length) // 3, length - 1})


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} MODEL_DIR   (made by scripts/fetch-model.sh antiberty MODEL_DIR)")
    model_dir = Path(sys.argv[1])
    torch.manual_seed(0)
    torch.set_num_threads(1)

    model, info = BertModel.from_pretrained(
        model_dir, attn_implementation="eager", torch_dtype=torch.float32, output_loading_info=True
    )
    model.eval()
    # Every encoder tensor must come from the checkpoint: nothing left at its random init.
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    tokenizer = BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=False)
    vocab = [line.rstrip("\n") for line in open(model_dir / "vocab.txt")]

    OUT.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, seq in SEQUENCES.items():
        ids = [vocab.index("[CLS]")] + [vocab.index(c) for c in seq] + [vocab.index("[SEP]")]
        # AntiBERTy tokenises space-separated residues with BertTokenizer: same ids.
        assert tokenizer(" ".join(seq))["input_ids"] == ids, name
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            out = model(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                token_type_ids=torch.zeros_like(input_ids),
                output_attentions=True,
            )
        # [layers, heads, T, T] → residues only (drop [CLS] and [SEP]).
        att = torch.stack([a[0] for a in out.attentions]).numpy().astype(np.float32)
        att = att[:, :, 1:-1, 1:-1]
        length = len(seq)
        assert att.shape[2:] == (length, length)
        rows = rows_for(length)
        np.save(OUT / f"{name}.rows.npy", np.ascontiguousarray(att[:, :, rows, :]))
        np.save(OUT / f"{name}.key_mean.npy", np.ascontiguousarray(att.mean(axis=2, dtype=np.float64).astype(np.float32)))
        cases[name] = {"sequence": seq, "input_ids": ids, "rows": rows, "length": length}

    expected = {
        "model": "AntiBERTy (AntiBERTy_md_smooth) from PyPI antiberty==0.1.3",
        "wheel_sha256": WHEEL_SHA256,
        "weights_sha256": sha256(model_dir / "pytorch_model.bin"),
        "n_layers": model.config.num_hidden_layers,
        "n_heads": model.config.num_attention_heads,
        "generated_by": {
            "script": "tests/golden/antiberty_expected.py",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
        "loading": {
            "missing_keys": sorted(info["missing_keys"]),
            "unexpected_keys": sorted(info["unexpected_keys"]),
        },
        "cases": cases,
    }
    text = json.dumps(expected, indent=1, sort_keys=True)
    # Lists of numbers on one line each.
    text = re.sub(r"\[([\d,\s]+)\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    (OUT / "expected.json").write_text(text + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
