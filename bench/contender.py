"""The PyTorch contender of bench/run.sh, and provis' own per-pair loops.

  python contender.py torch|provis MODEL_DIR DATASET_DIR [--batch 4] [--threshold 0.3] [--limit N]

Reads the canonical dataset's shards (ids, sequences, binding sites),
sorts records by length, runs transformers with output_attentions=True in
batches, and counts per head the high-confidence arcs (α ≥ θ, as provis, between residue
tokens) and those landing on a binding site:
  torch:  counts vectorised in torch over [B, H, T, T] (null off);
  provis: one sequence at a time, Python loops over every (layer, head, i, j),
          as provis' attention analysis does.
Prints one JSON line: sequences, residues, tokens, seconds of the loop
(model loading excluded) and a checksum of the counts.
"""

import argparse
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
from transformers import AutoConfig, AutoModel, BertTokenizer, EsmTokenizer


def records(dataset: Path):
    out = []
    for shard in sorted((dataset / "shards").glob("*.parquet")):
        t = pq.read_table(shard, columns=["id", "sequence", "binding_sites"]).to_pylist()
        out.extend(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["torch", "provis"])
    ap.add_argument("model")
    ap.add_argument("dataset")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=512)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg = AutoConfig.from_pretrained(a.model)
    esm = cfg.model_type == "esm"
    if esm:
        tok = EsmTokenizer(str(Path(a.model) / "vocab.txt"))
        prep = lambda s: s
    else:
        tok = BertTokenizer(str(Path(a.model) / "vocab.txt"), do_lower_case=False)
        prep = lambda s: " ".join(s.replace("U", "X").replace("Z", "X").replace("O", "X").replace("B", "X"))
    cfg._attn_implementation = "eager"
    model = AutoModel.from_pretrained(a.model, config=cfg, add_pooling_layer=False).eval()
    recs = records(Path(a.dataset))
    if a.limit:
        recs = recs[: a.limit]
    recs.sort(key=lambda r: len(r["sequence"]))
    n_layers, n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
    arcs = torch.zeros(n_layers, n_heads, dtype=torch.int64)
    hits = torch.zeros(n_layers, n_heads, dtype=torch.int64)
    residues = tokens = 0
    batch = a.batch if a.mode == "torch" else 1
    start = time.perf_counter()
    for k in range(0, len(recs), batch):
        chunk = recs[k : k + batch]
        enc = tok([prep(r["sequence"]) for r in chunk], padding=True, truncation=True,
                  max_length=a.max_len, return_tensors="pt")
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    output_attentions=True)
        b, t = enc["input_ids"].shape
        lens = [min(len(r["sequence"]), a.max_len - 2) for r in chunk]
        residues += sum(lens)
        tokens += int(enc["attention_mask"].sum())
        mask = torch.zeros(b, t, dtype=torch.bool)
        site = torch.zeros(b, t, dtype=torch.bool)
        for i, (r, n) in enumerate(zip(chunk, lens)):
            mask[i, 1 : 1 + n] = True
            for p in r["binding_sites"] or []:
                if p < n:
                    site[i, 1 + p] = True
        if a.mode == "torch":
            pair = mask[:, None, :, None] & mask[:, None, None, :]
            for layer, att in enumerate(out.attentions):
                arc = (att >= a.threshold) & pair
                arcs[layer] += arc.sum((0, 2, 3))
                hits[layer] += (arc & site[:, None, None, :]).sum((0, 2, 3))
        else:
            n = lens[0]
            sites = set(int(p) for p in (chunk[0]["binding_sites"] or []))
            for layer, att in enumerate(out.attentions):
                att = att[0].numpy()
                for h in range(n_heads):
                    for i in range(n):
                        for j in range(n):
                            if att[h, 1 + i, 1 + j] >= a.threshold:
                                arcs[layer, h] += 1
                                if j in sites:
                                    hits[layer, h] += 1
    seconds = time.perf_counter() - start
    print(json.dumps({
        "contender": a.mode, "sequences": len(recs), "residues": residues, "tokens": tokens,
        "seconds": seconds, "arcs": int(arcs.sum()), "hits": int(hits.sum()),
    }))


if __name__ == "__main__":
    main()
