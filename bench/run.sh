#!/usr/bin/env bash
# The throughput benchmark (issue 9): ONE run that alternates headscan, the
# PyTorch contender and provis' per-pair loops on a ProtBert-shaped and an
# ESM-2-shaped random model, same threads, and prints sequences/s,
# residues/s, achieved GFLOP/s, the fraction of the machine's measured fp32
# GEMM rate, headscan's analysis overhead and peak RSS.
#
#   bench/run.sh [ROUNDS]        (default 3; BENCH_DIR=/tmp/headscan-bench)
#
# Needs ../shared/data (HEADSCAN_TEST_DATA) for the provis binding-site set
# and the PDB/mmCIF structures (contacts), python3 with venv, and network access to PyPI
# the first time (bench/.venv from bench/requirements.txt).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/headscan-bench}
DATA=${HEADSCAN_TEST_DATA:-$ROOT/../shared/data}
ROUNDS=${1:-3}
mkdir -p "$WORK"
if [ ! -x "$ROOT/bench/.venv/bin/python" ] || ! cmp -s "$ROOT/bench/requirements.txt" "$ROOT/bench/.venv/requirements.txt"; then
  python3 -m venv "$ROOT/bench/.venv"
  "$ROOT/bench/.venv/bin/pip" install -q -r "$ROOT/bench/requirements.txt"
  cp "$ROOT/bench/requirements.txt" "$ROOT/bench/.venv/requirements.txt"
fi
(cd "$ROOT" && cargo build --release -q)
exec "$ROOT/bench/.venv/bin/python" "$ROOT/bench/bench.py" --headscan "$ROOT/target/release/headscan" \
  --work "$WORK" --data "$DATA" --rounds "$ROUNDS"
