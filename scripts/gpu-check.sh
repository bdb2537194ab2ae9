#!/usr/bin/env bash
# The one device check of issue 9, for a session that has the accelerator
# (about 5 minutes on an H100). Run it on the device machine from the
# repository root, with the CUDA build carried:
#
#   scripts/build-cuda.sh                      # here: target/cuda/headscan.gz
#   device run (carry target/cuda/headscan.gz): scripts/gpu-check.sh
#
# It unpacks the binary, points LD_LIBRARY_PATH at PyTorch's CUDA libraries
# (nvidia/cu13/lib of the machine's Python), then prints every figure:
#   1. the card (nvidia-smi);
#   2. the golden check: `headscan attention` on the GPU against this
#      machine's transformers for every fixture family (scripts/gpu/golden.py,
#      tolerance 1e-5);
#   3. the benchmark: `headscan run` on a 30-layer ProtBert-shaped model at
#      L = 512 in bf16 and f32 against the card's measured GEMM rates, and
#      the bf16 counts against f32's (scripts/gpu/bench.py).
# Figures also land in $OUT (the device tool's folder) when set.
#
# Without a GPU (to check the script itself): GPU_CHECK_DEVICE=cpu
# HEADSCAN_BIN=target/release/headscan GPU_CHECK_LAYERS=2 GPU_CHECK_SEQUENCES=8
# scripts/gpu-check.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${GPU_CHECK_DEVICE:-cuda:0}
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
RESULTS=${OUT:-$WORK/results}
mkdir -p "$RESULTS"
if [ -n "${HEADSCAN_BIN:-}" ]; then
  BIN=$HEADSCAN_BIN
else
  BIN=$WORK/headscan
  gunzip -c "${HEADSCAN_CUDA_GZ:-$ROOT/target/cuda/headscan.gz}" > "$BIN"
  chmod +x "$BIN"
fi
NVLIB=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)
if [ -d "$NVLIB" ]; then
  export LD_LIBRARY_PATH=$NVLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
echo "# $(date -u +%FT%TZ) headscan $("$BIN" --version 2>&1 | head -1), device $DEVICE"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$RESULTS/card.txt"
fi
ldd "$BIN" | grep -E 'cuda|cublas|curand|nvrtc' || true

status=0
"$PY" "$ROOT/scripts/gpu/golden.py" --headscan "$BIN" --device "$DEVICE" | tee "$RESULTS/golden.txt" || status=1
"$PY" "$ROOT/scripts/gpu/bench.py" --headscan "$BIN" --device "$DEVICE" --work "$WORK/bench" \
  --layers "${GPU_CHECK_LAYERS:-30}" --sequences "${GPU_CHECK_SEQUENCES:-1000}" \
  --batch-size "${GPU_CHECK_BATCH:-16}" | tee "$RESULTS/bench.txt" || status=1
rm -rf "$WORK/bench"
exit $status
