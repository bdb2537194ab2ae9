#!/usr/bin/env python3
"""The GPU benchmark of scripts/gpu-check.sh (issue 9): `headscan run` on a
ProtBert-shaped random model (hidden 1024, 16 heads, intermediate 4096,
`--layers` layers, default 30 as ProtBert) over random sequences of 510
residues (L = 512 tokens), in f32 and in bf16, against the card's measured
GEMM rates.

    python3 scripts/gpu/bench.py --headscan BIN --work DIR [--device cuda:0]
        [--layers 30] [--sequences 1000] [--batch-size 16]

Prints, per precision: sequences/s, achieved TFLOP/s (2·T·(4h² + 2h·i) +
4·T²·h per layer and sequence) and its share of the card's measured GEMM
rate for that precision (torch, 8192³; f32 with TF32 off), the forward
seconds the worker logged, peak GPU memory, and the bf16 counts against the
f32 ones (arcs per head, feature `aa`). Needs torch and transformers; reads
the counts with `headscan results top`, so no pyarrow is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "L", "A", "G", "V", "E", "S", "I", "K", "R", "D",
         "T", "P", "N", "Q", "F", "Y", "M", "H", "C", "W", "X", "U", "B", "Z", "O"]
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def gemm_rate(dtype: torch.dtype, device: str) -> float:
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        best = max(best, 10 * 2 * n**3 / (time.perf_counter() - t) / 1e12)
    return best


def make_model(d: Path, layers: int) -> None:
    from transformers import BertConfig, BertModel
    if (d / "model.safetensors").exists():
        return
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30, hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16,
                     intermediate_size=4096, hidden_act="gelu", max_position_embeddings=40000,
                     type_vocab_size=2, pad_token_id=0, initializer_range=0.07, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = BertModel(cfg, add_pooling_layer=False).eval()
    d.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(d, safe_serialization=True)
    (d / "vocab.txt").write_text("\n".join(VOCAB) + "\n")


def make_dataset(hs: str, work: Path, n: int) -> Path:
    ds = work / f"random-{n}"
    if (ds / "manifest.json").exists():
        return ds
    rng = random.Random(0)
    fasta = work / f"random-{n}.fasta"
    with fasta.open("w") as f:
        for i in range(n):
            f.write(f">r{i}\n{''.join(rng.choice(AMINO) for _ in range(510))}\n")
    subprocess.run([hs, "ingest", "--format", "fasta", "--input", str(fasta), "--out", str(ds), "--overwrite"],
                   check=True, capture_output=True)
    return ds


def top_arcs(hs: str, out: Path, feature: str) -> dict[str, int]:
    p = subprocess.run([hs, "results", "top", "--results", str(out), "--feature", feature, "--top", "100000"],
                       check=True, capture_output=True, text=True)
    rows = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\d+-\d+)\s+(\d+)\s+", line)
        if m:
            rows[m.group(1)] = int(m.group(2))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--headscan", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    hs, work = a.headscan, a.work
    work.mkdir(parents=True, exist_ok=True)
    cuda = a.device.startswith("cuda")
    rates = {}
    if cuda:
        rates = {"f32": gemm_rate(torch.float32, "cuda"), "bf16": gemm_rate(torch.bfloat16, "cuda")}
        print(f"# {torch.cuda.get_device_name(0)}: GEMM 8192³ f32 (TF32 off) {rates['f32']:.1f} TFLOP/s, "
              f"bf16 {rates['bf16']:.1f} TFLOP/s", flush=True)
    model = work / f"protbert_shape_{a.layers}"
    t0 = time.perf_counter()
    make_model(model, a.layers)
    ds = make_dataset(hs, work, a.sequences)
    print(f"# inputs ready in {time.perf_counter() - t0:.1f} s: {a.layers}-layer ProtBert shape, "
          f"{a.sequences} sequences of 510 residues", flush=True)
    t, h, i = 512, 1024, 4096
    flop = a.sequences * a.layers * (2 * t * (4 * h * h + 2 * h * i) + 4 * t * t * h)
    outs, per_second = {}, {}
    for precision in ["bf16", "f32"]:
        out = work / f"out-{precision}"
        cmd = [hs, "run", "--model", str(model), "--dataset", str(ds), "--features", "aa", "--null-samples", "0",
               "--device", a.device, "--precision", precision, "--batch-size", str(a.batch_size),
               "--workers", "1", "--out", str(out)]
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True,
                           env={"RUST_LOG": "headscan_worker::shard=info,warn", "PATH": "/usr/bin:/bin",
                                "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")})
        wall = time.perf_counter() - start
        if p.returncode != 0:
            print(f"{precision}: headscan run failed\n{p.stderr[-3000:]}")
            return 1
        fwd = sum(float(x) for x in re.findall(r"forward_s=([0-9.e-]+)", p.stderr))
        ana = sum(float(x) for x in re.findall(r"analysis_s=([0-9.e-]+)", p.stderr))
        tflops = flop / max(fwd, 1e-9) / 1e12
        share = f"{100 * tflops / rates[precision]:.0f}% of its GEMM rate" if precision in rates else ""
        print(f"{precision}: {a.sequences / wall:.1f} seq/s end to end ({wall:.1f} s); forward {fwd:.1f} s "
              f"({a.sequences / max(fwd, 1e-9):.1f} seq/s, {tflops:.1f} TFLOP/s {share}); analysis {ana:.1f} s "
              f"({100 * ana / max(fwd, 1e-9):.1f}% of forward)", flush=True)
        summary = json.loads((out / "summary.json").read_text())
        print(f"{precision}: summary precision {summary['config']['precision']}, {summary['sequences']} sequences",
              flush=True)
        outs[precision] = out
        per_second[precision] = a.sequences / max(fwd, 1e-9)
    if cuda:
        print(f"# peak GPU memory of this script's torch: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    worst, total_f32, total_bf16 = 0.0, 0, 0
    for aa in "KLA":
        f32, bf16 = top_arcs(hs, outs["f32"], f"aa:{aa}"), top_arcs(hs, outs["bf16"], f"aa:{aa}")
        for head, arcs in f32.items():
            other = bf16.get(head, 0)
            total_f32 += arcs
            total_bf16 += other
            worst = max(worst, abs(arcs - other) / max(arcs, 1))
    print(f"bf16 vs f32 arcs (aa:K, aa:L, aa:A heads): total {total_bf16} vs {total_f32} "
          f"({100 * (total_bf16 - total_f32) / max(total_f32, 1):+.2f}%), worst head {100 * worst:.2f}%")
    for precision, rate in per_second.items():
        print(f"# a million sequences of 510 residues at the {precision} forward rate: {1e6 / rate / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
