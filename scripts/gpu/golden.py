#!/usr/bin/env python3
"""The GPU golden check of scripts/gpu-check.sh: `headscan attention` on the
GPU against this machine's transformers for every fixture family.

    python3 scripts/gpu/golden.py --headscan BIN [--device cuda:0] [--tolerance 1e-5]

For each fixture under tests/fixtures/models and each of its single-sequence
cases, headscan writes the attention with special tokens (.npy, [layers,
heads, L, L]); transformers runs the same model (eager attention, f32, on the
GPU with TF32 off, and on the CPU) on the recorded input ids. Prints the max
|Δ| per family against both and against the recorded goldens; exits 1 when
any exceeds the tolerance. Needs torch, transformers, safetensors, numpy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
sys.path.insert(0, str(ROOT / "tests" / "golden"))
import check_fixtures  # noqa: E402  (the fixtures' own loaders)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def load(name: str, d: Path):
    if name == "tape_bert":
        return check_fixtures.tape_bert(d)
    cls = check_fixtures.FAMILIES[name][0]
    return cls.from_pretrained(d, use_safetensors=True, attn_implementation="eager").eval()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--headscan", required=True)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    a = ap.parse_args()
    torch_dev = a.device if a.device.startswith("cuda") and torch.cuda.is_available() else "cpu"
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["bert", "tape_bert", "albert", "xlnet", "esm2", "esm1b", "t5"]:
            d = FIXTURES / name
            doc = json.loads((d / "cases.json").read_text())
            gold = load_file(str(d / "attentions.safetensors"))
            model = load(name, d)
            labels = [(f"transformers on {torch_dev}", torch_dev)] + ([("transformers on cpu", "cpu")] if torch_dev != "cpu" else [])
            worst = {label: 0.0 for label, _ in labels} | {"recorded": 0.0}
            n = 0
            for case in doc["cases"]:
                if len(case["sequences"]) != 1:
                    continue
                npy = Path(tmp) / f"{name}-{case['case']}.npy"
                p = subprocess.run([a.headscan, "attention", "--model", str(d), "--sequence", case["sequences"][0],
                                    "--out", str(npy), "--keep-special", "--device", a.device],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"{name} case {case['case']}: headscan failed\n{p.stderr[-2000:]}")
                    bad += 1
                    continue
                ours = torch.from_numpy(np.load(npy)).double()
                t = case["tensors"]
                ids, mask = gold[t["input_ids"]], gold[t["attention_mask"]]
                tt = gold.get(t.get("token_type_ids", ""))
                recorded = torch.stack([gold[x][0] for x in t["attentions"]]).double()
                worst["recorded"] = max(worst["recorded"], (ours - recorded).abs().max().item())
                for label, dev in labels:
                    m = model.to(dev)
                    out = check_fixtures.run(m, name, ids.to(dev), mask.to(dev), None if tt is None else tt.to(dev))
                    theirs = torch.stack([x[0].double().cpu() for x in out.attentions])
                    worst[label] = max(worst[label], (ours - theirs).abs().max().item())
                n += 1
            line = ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
            ok = n > 0 and all(v <= a.tolerance for v in worst.values())
            print(f"{name}: {n} case(s), headscan on {a.device}, max |Δ| vs {line}  {'ok' if ok else 'FAIL'}", flush=True)
            bad += not ok
    print("golden: OK" if not bad else f"golden: {bad} failure(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
