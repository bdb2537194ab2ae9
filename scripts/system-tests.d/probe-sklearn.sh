#!/usr/bin/env bash
# Issue 12: the linear probes against scikit-learn. Rebuilds the pinned venv
# of scripts/probe_sklearn/ (cached under target/), runs `headscan probe` on
# the first 24 CB513 chains (seed 3, tiny BERT fixture) and compare.py on its
# features and split, then checks that scikit-learn still gives the numbers
# committed in tests/fixtures/probe_sklearn/ (which tests/probe_e2e.rs uses
# without Python) and that headscan is within 0.02 of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${HEADSCAN_TEST_DATA:-../shared/data}
if [ ! -f "$data/SOURCES.md" ]; then
    if [ "${CI:-}" = true ]; then echo "shared test data not found at $data"; exit 1; fi
    echo "SKIPPED: shared test data not found at $data (set HEADSCAN_TEST_DATA)"
    exit 0
fi
venv=target/probe-sklearn-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sklearn, pyarrow' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/probe_sklearn/requirements.txt
fi
[ -x target/debug/headscan ] || cargo build -q --bin headscan
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -25 "$data/secondary_structure/CB513_HHblits.csv" > "$work/cb513_slice.csv"
target/debug/headscan ingest --format ss-csv --input "$work/cb513_slice.csv" --out "$work/ds" --shard-rows 24
RUST_LOG=warn target/debug/headscan probe --model tests/fixtures/models/bert --dataset "$work/ds" \
    --out "$work/out" --tasks ss4 --seed 3
"$venv/bin/python" scripts/probe_sklearn/compare.py --dataset "$work/ds" --probe-out "$work/out" \
    --write "$work/result.json" > /dev/null
"$venv/bin/python" - "$work/result.json" tests/fixtures/probe_sklearn/cb513_first24_seed3.json <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["results"]
want = json.load(open(sys.argv[2]))["results"]
assert len(got) == len(want) == 2, (got, want)
for g, w in zip(got, want):
    assert g["n_train"] == w["n_train"] and g["n_eval"] == w["n_eval"], (g, w)
    assert abs(g["sklearn"] - w["sklearn"]) < 1e-6, f"scikit-learn moved: {g} vs committed {w}"
    assert g["diff"] <= 0.02, f"layer {g['layer']}: headscan {g['headscan']} vs scikit-learn {g['sklearn']}"
    print(f"layer {g['layer']}: headscan f1_macro {g['headscan']:.4f}, scikit-learn {g['sklearn']:.4f}, |diff| {g['diff']:.4f}")
PY
echo "probe-sklearn: headscan within 0.02 of scikit-learn; committed numbers reproduced"
