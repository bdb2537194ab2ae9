"""Driver of bench/run.sh: prepares the inputs, then alternates the
contenders round by round and prints a Markdown table of medians.

Per run it records wall seconds and peak RSS (GNU time); headscan's worker
also logs the forward and analysis seconds of every shard, from which the
analysis overhead (everything but the forward pass, as a share of the
forward pass) is computed. FLOPs are counted from the model shape and each
sequence's tokens: per layer 2·T·(4h² + 2h·i) for the linear layers plus
4·T²·h for QKᵀ and AV.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

HERE = Path(__file__).resolve().parent


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def timed(cmd, env=None):
    """(wall seconds, peak RSS MB, stderr, stdout) of a command under GNU time."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "RSS_KB %M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    rss = int(re.findall(r"RSS_KB (\d+)", p.stderr)[-1]) / 1024
    return wall, rss, p.stderr, p.stdout


def gemm_rate() -> float:
    torch.set_num_threads(torch.get_num_threads())
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    return best


def flops(model: Path, lengths: list[int], max_len: int = 512) -> float:
    cfg = json.loads((model / "config.json").read_text())
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    total = 0.0
    for n in lengths:
        t = min(n, max_len - 2) + 2
        total += layers * (2 * t * (4 * h * h + 2 * h * i) + 4 * t * t * h)
    return total


def lengths(dataset: Path) -> list[int]:
    out = []
    for shard in sorted((dataset / "shards").glob("*.parquet")):
        out += [len(s) for s in pq.read_table(shard, columns=["sequence"]).column("sequence").to_pylist()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--headscan", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    hs, work = a.headscan, a.work
    threads = torch.get_num_threads()
    py = sys.executable
    if not (work / "slice" / "manifest.json").exists():
        sh([hs, "ingest", "--format", "tape-lmdb", "--input", str(a.data / "provis/binding_site_valid.lmdb"),
            "--out", str(work / "bs"), "--overwrite"])
        sh([py, str(HERE / "make_inputs.py"), str(work), str(work / "bs")])
        sh([hs, "ingest", "--format", "parquet", "--input", str(work / "slice.parquet"), "--out", str(work / "slice")])
    if not (work / "labelled" / "manifest.json").exists():
        sh([hs, "ingest", "--format", "structures", "--input", str(a.data / "structures"),
            "--out", str(work / "pn"), "--overwrite"])
        sh([py, str(HERE / "make_inputs.py"), "--labelled-structures", str(work / "structures.parquet"), str(work / "pn")])
        sh([hs, "ingest", "--format", "parquet", "--input", str(work / "structures.parquet"),
            "--out", str(work / "labelled"), "--overwrite"])
    ds = work / "slice"
    n_seq = len(lengths(ds))
    res = sum(min(n, 510) for n in lengths(ds))
    rate = gemm_rate()
    print(f"# {threads} threads; torch fp32 GEMM 2048³: {rate:.0f} GFLOP/s; {n_seq} sequences, {res} residues", flush=True)
    models = ["protbert_shape", "esm2_shape"]
    runs: dict = {}
    env = {"RUST_LOG": "headscan_worker::shard=info,warn", "PATH": "/usr/bin:/bin"}

    def headscan_run(model, dataset, features, null, key):
        out = work / "out"
        wall, rss, err, _ = timed([hs, "run", "--model", str(work / model), "--dataset", str(dataset),
                                   "--features", features, "--null-samples", str(null), "--batch-size", "4",
                                   "--workers", "1", "--limit", str(n_seq), "--out", str(out)], env=env)
        fwd = sum(float(x) for x in re.findall(r"forward_s=([0-9.e-]+)", err))
        ana = sum(float(x) for x in re.findall(r"analysis_s=([0-9.e-]+)", err))
        heads = pq.read_table(out / "heads.parquet", columns=["feature", "arcs", "hits"]).to_pylist()
        site = [h for h in heads if h["feature"] == "binding_site"]
        counts = (sum(h["arcs"] for h in site), sum(h["hits"] for h in site))
        subprocess.run(["rm", "-rf", str(out)])
        runs.setdefault(key, []).append({"wall": wall, "rss": rss, "forward": fwd, "analysis": ana, "counts": counts})

    for r in range(a.rounds):
        for model in models:
            headscan_run(model, ds, "binding_site", 0, ("headscan", model))
            wall, rss, _, out = timed([py, str(HERE / "contender.py"), "torch", str(work / model), str(ds), "--batch", "4"])
            j = json.loads(out.strip().splitlines()[-1])
            runs.setdefault(("torch", model), []).append(
                {"wall": wall, "rss": rss, "loop": j["seconds"], "counts": (j["arcs"], j["hits"])})
            if r == 0:
                wall, rss, _, out = timed([py, str(HERE / "contender.py"), "provis", str(work / model), str(ds), "--limit", "2"])
                j = json.loads(out.strip().splitlines()[-1])
                runs.setdefault(("provis", model), []).append({"loop": j["seconds"], "n": 2, "rss": rss})
            headscan_run(model, work / "labelled", "contact,ss4,binding_site,aa", 0, ("overhead-null0", model))
            headscan_run(model, work / "labelled", "contact,ss4,binding_site,aa", 100, ("overhead-null100", model))
        print(f"round {r + 1}/{a.rounds} done", flush=True)

    med = lambda xs: statistics.median(xs)
    print()
    for model in models:
        ours, theirs = runs[("headscan", model)][0]["counts"], runs[("torch", model)][0]["counts"]
        verdict = "equal" if ours == theirs else "DIFFER"
        print(f"{model}: binding_site arcs, hits: headscan {ours}, PyTorch {theirs} ({verdict})")
    print()
    print("| model | contender | sequences/s | residues/s | GFLOP/s | of GEMM rate | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        fl = flops(work / model, lengths(ds))
        rows = []
        h = runs[("headscan", model)]
        for label, sec in [("headscan run (end to end)", med([x["wall"] for x in h])),
                           ("headscan (forward + analysis)", med([x["forward"] + x["analysis"] for x in h]))]:
            rows.append((label, sec, med([x["rss"] for x in h])))
        t = runs[("torch", model)]
        rows.append(("PyTorch contender (loop)", med([x["loop"] for x in t]), med([x["rss"] for x in t])))
        p = runs[("provis", model)][0]
        rows.append(("provis loops (2 sequences, scaled)", p["loop"] * n_seq / p["n"], p["rss"]))
        for label, sec, rss in rows:
            print(f"| {model} | {label} | {n_seq / sec:.2f} | {res / sec:.0f} | {fl / sec / 1e9:.0f} | {fl / sec / 1e9 / rate:.0%} | {rss:.0f} MB |")
    print()
    print("| model | ratio headscan end to end / PyTorch | ratio compute / PyTorch | analysis overhead, binding_site | contact,ss4,binding_site,aa null 0 | same, null 100 |")
    print("|---|---|---|---|---|---|")
    for model in models:
        h, t = runs[("headscan", model)], runs[("torch", model)]
        tl = med([x["loop"] for x in t])
        ov = lambda key: med([x["analysis"] / x["forward"] for x in runs[(key, model)]])
        print(f"| {model} | {tl / med([x['wall'] for x in h]):.2f} | {tl / med([x['forward'] + x['analysis'] for x in h]):.2f} "
              f"| {med([x['analysis'] / x['forward'] for x in h]):.1%} | {ov('overhead-null0'):.1%} | {ov('overhead-null100'):.1%} |")


if __name__ == "__main__":
    main()
