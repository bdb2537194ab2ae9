#!/usr/bin/env python3
"""Writes tests/stats/expected.json: fixed synthetic PartialCounts-like inputs
and every statistic of DESIGN §1 computed from them with statsmodels, scipy,
numpy and Biopython, for coordinator/src/stats/tests.rs to compare against
(1e-12 relative). Run once, commit the JSON; CI never runs Python.

    python -m pip install -r tests/stats/requirements.txt
    python tests/stats/make_expected.py

Conventions the Rust code documents and this reference follows:
- heads are layer-major; heads beyond n_layers*n_heads are ignored;
- Bonferroni m = heads with arcs >= min_arcs (alpha itself when m = 0);
- CI = proportion_confint(hits, arcs, alpha/m, method="normal") (clipped);
- z, p = proportions_ztest([hits, bg_hits], [arcs, bg_total]) (pooled, two-sided);
- null_std is numpy's std with ddof=0; null_p = (1 + #{null >= hits})/(K+1), NaN for K = 0;
- null_std_exact = sqrt(max(var, 0)) / arcs;
- layer rows over non-excluded heads (NaN when none, NaN-propagating);
- centre of gravity over layers that have included heads, as provis'
  report_edge_features_combined.py (normalise the layer means, then sum l * w_l);
- aa similarity: scipy pearsonr over heads non-excluded in both features
  (NaN for < 2 heads, constant or NaN input), BLOSUM62 from Biopython, and the
  final r over provis' lower triangle;
- top heads: non-excluded, non-NaN, proportion descending, ties (layer, head).
"""

import json
import math
import pathlib
import warnings

import numpy as np
import scipy
import scipy.stats
import statsmodels
import Bio
from Bio.Align import substitution_matrices
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

AAS = "ACDEFGHIKLMNPQRSTVWY"
BLOSUM62 = substitution_matrices.load("BLOSUM62")
MASK = (1 << 64) - 1


class Lcg:
    """Small deterministic generator (Knuth's MMIX LCG, top 53 bits)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def bits(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 11

    def int(self, lo, hi):
        return lo + self.bits() % (hi - lo + 1)

    def uniform(self):
        return self.bits() / float(1 << 53)

    def dyadic(self, lo, hi):
        """A multiple of 1/1024 in [lo, hi]: exact in binary and in short decimal."""
        return self.int(int(lo * 1024), int(hi * 1024)) / 1024.0


def f64(x):
    return np.float64(x)


def div(a, b):
    with np.errstate(all="ignore"):
        return float(f64(a) / f64(b))


# ------------------------------------------------------------------ inputs


def make_head(rng, arcs, hits, k, rate, null_hits=None, exact_var=None):
    expected = arcs * rate if not math.isnan(rate) else 0.0
    if null_hits is None:
        null_hits = [max(0, min(arcs, int(round(expected)) + rng.int(-4, 4))) for _ in range(k)]
    return {
        "arcs": arcs,
        "hits": hits,
        "attn_mass": 0.0 if arcs == 0 else arcs * 0.625 + rng.dyadic(0, 1),
        "weighted_hits": 0.0 if arcs == 0 else hits * 0.5 + rng.dyadic(0, 0.5),
        "null_hits": null_hits,
        "null_weighted_hits": [n * 0.5 + rng.dyadic(0, 0.5) for n in null_hits],
        "null_exact_mean": math.floor(expected * 1024) / 1024.0,
        "null_exact_var": exact_var
        if exact_var is not None
        else math.floor(expected * (1 - (0 if math.isnan(rate) else rate)) * 1024) / 1024.0,
    }


def feature(name, bg_hits, bg_total, heads):
    return {"feature": name, "background_hits": bg_hits, "background_total": bg_total, "heads": heads}


def case_basic():
    rng = Lcg(1)
    k = 5
    arcs = [500, 1200, 99, 100, 0, 50, 7, 80, 3000, 640, 100000, 150]
    contact_hits = [12, 30, 5, 0, 0, 3, 7, 1, 45, 40, 1300, 150]
    helix_hits = [200, 480, 40, 60, 0, 20, 3, 30, 1500, 100, 40000, 75]
    contact_rate = 1234 / 98765
    contact = []
    for i, (a, h) in enumerate(zip(arcs, contact_hits)):
        null = None
        if i == 0:
            null = [h, h + 1, h - 1, h, 3]  # ties with the observed hits
        if i == 8:
            null = [40, 40, 40, 40, 40]  # constant: std 0
        contact.append(make_head(rng, a, h, k, contact_rate, null_hits=null, exact_var=-(2.0**-40) if i == 9 else None))
    helix = [make_head(rng, a, h, k, 0.4) for a, h in zip(arcs, helix_hits)]
    return {
        "name": "basic: 3x4 heads, two features, a fully excluded layer, ties, clipping",
        "options": {"min_arcs": 100, "alpha": 0.05, "top_k": 5},
        "input": {
            "n_layers": 3,
            "n_heads": 4,
            "null_samples": k,
            "sequences": 17,
            "residues": 4321,
            "features": [feature("contact", 1234, 98765, contact), feature("ss4:helix", 40000, 100000, helix)],
        },
    }


def aa_features(rng, arcs, k, order, zero=None):
    n = len(arcs)
    loads = [(rng.uniform(), rng.uniform()) for _ in range(n)]
    out = []
    for aa in order:
        u, v = rng.uniform(), rng.uniform()
        bg_hits = rng.int(1000, 5000)
        rate = bg_hits / 50000
        heads = []
        for h in range(n):
            if aa == zero:
                hits = 0
            else:
                p = 0.01 + 0.08 * (loads[h][0] * u + loads[h][1] * v) / 2 + 0.01 * rng.uniform()
                hits = int(arcs[h] * p)
            heads.append(make_head(rng, arcs[h], hits, k, rate))
        out.append(feature(f"aa:{aa}", bg_hits, 50000, heads))
    return out


def case_aa():
    rng = Lcg(2)
    k = 3
    n_layers, n_heads = 4, 5
    arcs = [rng.int(150, 5000) for _ in range(n_layers * n_heads)]
    arcs[3], arcs[11], arcs[17] = 40, 99, 0
    order = list(AAS)
    for i in range(len(order) - 1, 0, -1):  # Fisher-Yates with the LCG
        j = rng.int(0, i)
        order[i], order[j] = order[j], order[i]
    contact = [make_head(rng, a, int(a * (0.02 + 0.3 * rng.uniform())), k, 0.015) for a in arcs]
    binding = [make_head(rng, a, int(a * 0.1 * rng.uniform()), k, 0.03) for a in arcs]
    features = [feature("contact", 1500, 100000, contact)]
    features += aa_features(rng, arcs, k, order)
    features.append(feature("binding_site", 1500, 50000, binding))
    return {
        "name": "aa: all 20 amino acids in shuffled order between two other features, 4x5 heads",
        "options": {"min_arcs": 100, "alpha": 0.05, "top_k": 4},
        "input": {
            "n_layers": n_layers,
            "n_heads": n_heads,
            "null_samples": k,
            "sequences": 250,
            "residues": 50000,
            "features": features,
        },
    }


def case_aa_degenerate():
    rng = Lcg(3)
    arcs = [120, 300, 50, 1000]
    features = aa_features(rng, arcs, 0, list(reversed(AAS)), zero="W")
    return {
        "name": "aa degenerate: aa:W never attended (constant vector: NaN r), K = 0, reversed order",
        "options": {"min_arcs": 100, "alpha": 0.05, "top_k": 10},
        "input": {
            "n_layers": 2,
            "n_heads": 2,
            "null_samples": 0,
            "sequences": 3,
            "residues": 50000,
            "features": features,
        },
    }


def case_edge():
    rng = Lcg(4)
    arcs = [0, 10, 250, 1000]

    def heads(hits, rate):
        return [make_head(rng, a, h, 0, rate) for a, h in zip(arcs, hits)]

    return {
        "name": "edge: zero arcs with min_arcs 0, zero backgrounds, pooled rate 0, infinite enrichment, K = 0",
        "options": {"min_arcs": 0, "alpha": 0.01, "top_k": 10},
        "input": {
            "n_layers": 2,
            "n_heads": 2,
            "null_samples": 0,
            "sequences": 2,
            "residues": 1000,
            "features": [
                feature("binding_site", 0, 0, heads([0, 2, 30, 100], float("nan"))),
                feature("ptm", 0, 500, heads([0, 0, 0, 0], 0.0)),
                feature("site:x", 10, 1000, heads([0, 10, 3, 0], 0.01)),
                feature("site:y", 0, 1000, heads([0, 1, 25, 7], 0.0)),
                feature("aa:A", 70, 1000, heads([0, 1, 20, 70], 0.07)),
            ],
        },
    }


def case_ragged():
    rng = Lcg(5)
    k = 2
    six = [make_head(rng, a, a // 3, k, 0.2) for a in [300, 400, 500, 600, 700, 800]]
    three = [make_head(rng, a, a // 2, k, 0.3) for a in [300, 400, 500]]
    return {
        "name": "ragged: more and fewer heads than n_layers*n_heads, a feature without heads, all excluded (m = 0)",
        "options": {"min_arcs": 1000000000, "alpha": 0.05, "top_k": 3},
        "input": {
            "n_layers": 2,
            "n_heads": 2,
            "null_samples": k,
            "sequences": 5,
            "residues": 700,
            "features": [
                feature("contact", 50, 2000, six),
                feature("ss4:coil", 300, 1000, three),
                feature("ss4:strand", 100, 1000, []),
            ],
        },
    }


def case_empty():
    return {
        "name": "empty: no layers, no features",
        "options": {"min_arcs": 100, "alpha": 0.05, "top_k": 10},
        "input": {"n_layers": 0, "n_heads": 0, "null_samples": 0, "sequences": 0, "residues": 0, "features": []},
    }


# ------------------------------------------------------------------ reference statistics


def pearson(x, y):
    """scipy.stats.pearsonr's statistic; NaN where scipy raises or warns it is undefined."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(scipy.stats.pearsonr(x, y).statistic)


def compute(case):
    inp, opt = case["input"], case["options"]
    n_layers, n_heads = inp["n_layers"], inp["n_heads"]
    shape = n_layers * n_heads
    min_arcs, alpha, top_k = opt["min_arcs"], opt["alpha"], opt["top_k"]
    out = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "sequences": inp["sequences"],
        "residues": inp["residues"],
        "heads": [],
        "layers": [],
        "null": [],
        "aa_similarity": [],
        "blosum62_pearson_r": None,
        "features": [],
    }
    rows_of = {}
    for fc in inp["features"]:
        name = fc["feature"]
        heads = fc["heads"][:shape]
        bg_hits, bg_total = fc["background_hits"], fc["background_total"]
        bg_rate = div(bg_hits, bg_total)
        m = sum(1 for h in heads if h["arcs"] >= min_arcs)
        alpha_m = alpha / max(m, 1)
        rows = []
        for i, h in enumerate(heads):
            arcs, hits = h["arcs"], h["hits"]
            excluded = arcs < min_arcs
            prop = div(hits, arcs)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lo, hi = proportion_confint(hits, arcs, alpha=alpha_m, method="normal")
                z, p = proportions_ztest([hits, bg_hits], [arcs, bg_total])
                null_props = np.array(h["null_hits"], dtype=np.int64) / f64(arcs)
                null_mean = float(np.mean(null_props))
                null_std = float(np.std(null_props, ddof=0))
            kk = len(h["null_hits"])
            null_p = (1 + sum(1 for n in h["null_hits"] if n >= hits)) / (kk + 1) if kk else float("nan")
            row = {
                "feature": name,
                "layer": i // n_heads,
                "head": i % n_heads,
                "arcs": arcs,
                "hits": hits,
                "proportion": prop,
                "attn_mass": h["attn_mass"],
                "weighted_hits": h["weighted_hits"],
                "weighted_proportion": div(h["weighted_hits"], h["attn_mass"]),
                "background_hits": bg_hits,
                "background_total": bg_total,
                "background_rate": bg_rate,
                "enrichment": div(prop, bg_rate),
                "ci_low": float(lo),
                "ci_high": float(hi),
                "z": float(z),
                "p_value": float(p),
                "significant": bool((not excluded) and p < alpha_m),
                "excluded": excluded,
                "null_mean": null_mean,
                "null_std": null_std,
                "null_p_value": float(null_p),
                "null_mean_exact": div(h["null_exact_mean"], arcs),
                "null_std_exact": div(math.sqrt(max(h["null_exact_var"], 0.0)), arcs),
            }
            rows.append(row)
            for s, nh in enumerate(h["null_hits"]):
                w = h["null_weighted_hits"][s] if s < len(h["null_weighted_hits"]) else float("nan")
                out["null"].append(
                    {"feature": name, "layer": row["layer"], "head": row["head"], "sample": s, "hits": nh, "weighted_hits": w}
                )
        out["heads"].extend(rows)
        if name not in rows_of:
            rows_of[name] = rows

        # layers, as provis' masked layer macro-average
        layer_rows = []
        for layer in range(n_layers):
            props = [r["proportion"] for r in rows if r["layer"] == layer and not r["excluded"]]
            if not props or any(math.isnan(x) for x in props):
                mean = mx = float("nan")
            else:
                mean, mx = float(np.mean(props)), float(np.max(props))
            layer_rows.append(
                {"feature": name, "layer": layer, "mean_proportion": mean, "max_proportion": mx, "heads_included": len(props)}
            )
        out["layers"].extend(layer_rows)
        used = [(r["layer"], r["mean_proportion"]) for r in layer_rows if r["heads_included"] > 0]
        with np.errstate(all="ignore"):
            w = np.array([x for _, x in used], dtype=float)
            normalized = w / w.sum()
            cog = float(sum(layer * normalized[j] for j, (layer, _) in enumerate(used))) if used else float("nan")
        best = sorted(
            (r for r in rows if not r["excluded"] and not math.isnan(r["proportion"])),
            key=lambda r: (-r["proportion"], r["layer"], r["head"]),
        )[:top_k]
        out["features"].append(
            {
                "feature": name,
                "background_rate": bg_rate,
                "center_of_gravity": cog,
                "heads_included": sum(1 for r in rows if not r["excluded"]),
                "heads_significant": sum(1 for r in rows if r["significant"]),
                "top_heads": [
                    {k: r[k] for k in ("layer", "head", "proportion", "ci_low", "ci_high")} for r in best
                ],
            }
        )

    if all(f"aa:{a}" in rows_of for a in AAS):
        corr = {}
        for i, a in enumerate(AAS):
            for b in AAS[i + 1 :]:
                ra, rb = rows_of[f"aa:{a}"], rows_of[f"aa:{b}"]
                pairs = [(x["proportion"], y["proportion"]) for x, y in zip(ra, rb) if not x["excluded"] and not y["excluded"]]
                r = pearson([p for p, _ in pairs], [q for _, q in pairs])
                corr[(a, b)] = corr[(b, a)] = r
                out["aa_similarity"].append(
                    {"aa_a": a, "aa_b": b, "attention_r": r, "blosum62": float(BLOSUM62[a][b])}
                )
        # provis report_aa_correlations.py: lower triangle, i > j; pairs whose
        # attention r is undefined (a constant vector) are left out.
        corr_scores, blos_scores = [], []
        for i, a in enumerate(AAS):
            for b in AAS[:i]:
                if math.isnan(corr[(a, b)]):
                    continue
                corr_scores.append(corr[(a, b)])
                blos_scores.append(float(BLOSUM62[a][b]))
        out["blosum62_pearson_r"] = pearson(corr_scores, blos_scores)
    return out


# ------------------------------------------------------------------ encoding


def encode(x):
    """Floats as JSON numbers; NaN and infinities as the strings "NaN", "inf", "-inf"."""
    if isinstance(x, dict):
        return {k: encode(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [encode(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x


def is_scalar(v):
    return not isinstance(v, (dict, list))


def is_flat(v):
    """A scalar, a list of scalars or of lists of scalars, or an object of those."""
    if is_scalar(v):
        return True
    if isinstance(v, list):
        return all(is_scalar(e) or (isinstance(e, list) and all(map(is_scalar, e))) for e in v)
    return all(is_flat(e) and not isinstance(e, dict) for e in v.values())


def dump(x, indent=0):
    """JSON with one line per flat object or list (rows stay greppable, the file small)."""
    if is_flat(x):
        return json.dumps(x, separators=(",", ":"), allow_nan=False)
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(x, dict):
        items = [f"{inner}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + dump(v, indent + 1) for v in x]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def normal_table():
    xs = [0.0, 0.1, 0.5, 0.6629126073623882, 0.7, 1.0, 1.96, 2.0, 3.0, 5.0, 5.656854249492381, 5.7, 8.0, 10.0,
          15.0, 20.0, 25.0, 30.0, 35.0, 37.0, -0.3, -0.5, -3.0, -10.0, -40.0]
    qs = [0.5, 0.4, 0.25, 0.1, 0.05, 0.025, 0.02425, 0.024, 0.01, 1e-3, 0.05 / 24, 0.05 / 288, 1e-5, 1e-10,
          1e-20, 1e-50, 1e-100, 1e-300, 0.6, 0.75, 0.99, 0.999999]
    return {
        "sf": [[x, float(scipy.stats.norm.sf(x))] for x in xs],
        "isf": [[q, float(scipy.stats.norm.isf(q))] for q in qs],
    }


def main():
    cases = [case_basic(), case_aa(), case_aa_degenerate(), case_edge(), case_ragged(), case_empty()]
    for case in cases:
        case["expected"] = compute(case)
    doc = {
        "generated_by": "tests/stats/make_expected.py",
        "versions": {
            "python": ".".join(map(str, __import__("sys").version_info[:3])),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "biopython": Bio.__version__,
        },
        "float_encoding": "JSON numbers; NaN and infinities as the strings NaN, inf, -inf",
        "normal": normal_table(),
        "cases": encode(cases),
    }
    path = pathlib.Path(__file__).with_name("expected.json")
    path.write_text(dump(encode(doc)) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
