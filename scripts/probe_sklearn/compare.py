#!/usr/bin/env python3
"""Compare `headscan probe` with scikit-learn's LogisticRegression.

Trains sklearn's LogisticRegression on exactly the features and split that
headscan used (OUT/embeddings shards, OUT/split.parquet, the dataset's labels),
with the same objective settings (C = 1/l2, class_weight="balanced"), and
prints one JSON object per (task, layer): headscan's validation metric,
sklearn's, and their difference. Use --write to save the result as the
expected numbers that tests/probe_e2e.rs checks (within 0.02).

Usage:
  python3 -m venv target/probe-sklearn-venv
  target/probe-sklearn-venv/bin/pip install -r scripts/probe_sklearn/requirements.txt
  target/probe-sklearn-venv/bin/python scripts/probe_sklearn/compare.py \
      --dataset DS --probe-out OUT [--l2 1.0] [--write FILE.json]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

SS4 = {**{c: 0 for c in "HGI"}, **{c: 1 for c in "EB"}, **{c: 2 for c in "TS"}}


def ss4_labels(ss8):
    """DESIGN §1: H G I helix, E B strand, T S turn_bend, '?' unlabelled, else coil."""
    return [None if c == "?" else SS4.get(c, 3) for c in ss8]


def read_dataset(ds: Path):
    manifest = json.loads((ds / "manifest.json").read_text())
    labels = {}
    for shard in manifest["shards"]:
        t = pq.read_table(ds / shard["url"], columns=["id", "ss8"]).to_pydict()
        for rid, ss8 in zip(t["id"], t["ss8"]):
            if ss8 is not None:
                labels[rid] = ss4_labels(ss8)
    return labels


def read_embeddings(emb: Path):
    manifest = json.loads((emb / "embeddings.json").read_text())
    parts = []
    for shard in manifest["shards"]:
        t = pq.read_table(emb / shard["url"])
        dim = t.schema.field("embedding").type.list_size
        vec = t.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
        parts.append((t.column("id").to_pylist(), t.column("position").to_numpy(), t.column("layer").to_numpy(), vec))
    return manifest["layers"], parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--probe-out", required=True, type=Path)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    labels = read_dataset(args.dataset)
    split = pq.read_table(args.probe_out / "split.parquet").to_pydict()
    train_ids = {i for i, s in zip(split["id"], split["split"]) if s == "train"}
    probes = pq.read_table(args.probe_out / "probes.parquet").to_pydict()
    ours = {
        (t, l, m): v
        for t, l, m, v in zip(probes["task"], probes["layer"], probes["metric"], probes["value"])
    }
    layers, parts = read_embeddings(args.probe_out / "embeddings")
    results = []
    for layer in layers:
        xs = {True: [], False: []}
        ys = {True: [], False: []}
        for ids, pos, lay, vec in parts:
            for r in range(len(ids)):
                if lay[r] != layer or ids[r] not in labels:
                    continue
                lab = labels[ids[r]]
                if pos[r] >= len(lab) or lab[pos[r]] is None:
                    continue
                train = ids[r] in train_ids
                xs[train].append(vec[r].astype(np.float64))
                ys[train].append(lab[pos[r]])
        clf = LogisticRegression(C=1.0 / args.l2, class_weight="balanced", max_iter=10000, tol=1e-10)
        clf.fit(np.array(xs[True]), np.array(ys[True]))
        pred = clf.predict(np.array(xs[False]))
        f1 = float(f1_score(np.array(ys[False]), pred, average="macro"))
        headscan = ours.get(("ss4", layer, "f1_macro"))
        results.append(
            {
                "task": "ss4",
                "layer": int(layer),
                "metric": "f1_macro",
                "sklearn": f1,
                "headscan": headscan,
                "diff": None if headscan is None else abs(headscan - f1),
                "n_train": len(ys[True]),
                "n_eval": len(ys[False]),
            }
        )
    meta = {"sklearn_version": sklearn.__version__, "numpy_version": np.__version__, "results": results}
    json.dump(meta, sys.stdout, indent=2)
    print()
    if args.write:
        args.write.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
