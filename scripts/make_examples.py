#!/usr/bin/env python3
"""Writes the bundled example data under examples/data/ (deterministic, stdlib only).

- demo.fasta + demo.tsv: 40 random protein sequences with synthetic
  binding-site / PTM / metal annotations;
- demo.proteinnet: 12 synthetic ProteinNet records whose Cα trace is a
  helical hairpin (two ideal α-helices, axes 8.5 Å apart, running in opposite
  directions) with a few residues unresolved, so long-range contacts exist.

These are made-up data for trying the tool, not biology.
"""
import math
import random
from pathlib import Path

AA = "ACDEFGHIKLMNPQRSTVWY"
OUT = Path(__file__).resolve().parent.parent / "examples" / "data"


def helix_ca(n):
    # 100° per residue, 1.5 Å rise, 2.3 Å radius: the classic α-helix Cα trace,
    # folded back after half the residues onto a parallel axis 8.5 Å away.
    half = n // 2
    up = [(2.3 * math.cos(math.radians(100 * i)), 2.3 * math.sin(math.radians(100 * i)), 1.5 * i) for i in range(half)]
    top = 1.5 * (half - 1)
    down = [
        (8.5 + 2.3 * math.cos(math.radians(100 * k)), 2.3 * math.sin(math.radians(100 * k)), top - 1.5 * k)
        for k in range(n - half)
    ]
    return up + down


def main():
    rng = random.Random(20210101)
    OUT.mkdir(parents=True, exist_ok=True)
    fasta, tsv = [], ["id\tfeature\tposition"]
    for k in range(40):
        n = rng.randint(30, 120)
        seq = "".join(rng.choice(AA) for _ in range(n))
        pid = f"demo{k:03d}"
        fasta.append(f">{pid} synthetic example protein {k}")
        fasta.extend(seq[i:i + 60] for i in range(0, n, 60))
        for pos in sorted(rng.sample(range(1, n + 1), 3)):
            tsv.append(f"{pid}\tbinding_site\t{pos}")
        for pos, aa in enumerate(seq, 1):
            if aa in "ST" and rng.random() < 0.2:
                tsv.append(f"{pid}\tptm\t{pos}")
            if aa in "CH" and rng.random() < 0.3:
                tsv.append(f"{pid}\tmetal\t{pos}")
    (OUT / "demo.fasta").write_text("\n".join(fasta) + "\n")
    (OUT / "demo.tsv").write_text("\n".join(tsv) + "\n")

    records = []
    for k in range(12):
        n = rng.randint(20, 60)
        seq = "".join(rng.choice(AA) for _ in range(n))
        ca = helix_ca(n)
        mask = ["+"] * n
        for i in rng.sample(range(n), 2):
            mask[i] = "-"
        lines = [f"[ID]\nSYN#{k:03d}", f"[PRIMARY]\n{seq}", "[EVOLUTIONARY]"]
        lines += ["\t".join(["0"] * n) for _ in range(21)]
        lines.append("[TERTIARY]")
        for axis in range(3):
            row = []
            for i in range(n):
                if mask[i] == "-":
                    row += ["0", "0", "0"]
                else:
                    v = ca[i][axis] * 100.0  # Å → picometres
                    row += [f"{v - 120:.1f}", f"{v:.1f}", f"{v + 120:.1f}"]
            lines.append("\t".join(row))
        lines.append(f"[MASK]\n{''.join(mask)}\n")
        records.append("\n".join(lines))
    (OUT / "demo.proteinnet").write_text("\n".join(records))


if __name__ == "__main__":
    main()
