#!/usr/bin/env bash
# Builds the CUDA build of headscan on a machine with no GPU and no driver
# (issue 9), for the device machine, which has no cargo:
#
#   scripts/build-cuda.sh        → target/cuda/headscan.gz (stripped, gzip)
#
# 1. a venv (target/cuda/venv) with the pinned NVIDIA wheels of
#    scripts/gpu/requirements-build.txt (nvcc, headers, cuBLAS, cuRAND, NVRTC);
# 2. a CUDA root folder (target/cuda/root) whose bin/, include/ and nvvm/ link
#    to the wheels', whose lib/ holds unversioned .so links to their libraries,
#    and whose lib/stubs/libcuda.so (SONAME libcuda.so.1) is a stub made here
#    from the driver functions cudarc declares; the real driver is found at
#    run time on the device;
# 3. cargo build --release --features cuda for compute capability 9.0
#    (H100/H200; CUDA_COMPUTE_CAP overrides), in target/cuda/build so the
#    CPU build in target/release is left alone.
#
# On the device: scripts/gpu-check.sh unpacks and runs it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/target/cuda
VENV=$OUT/venv
CUDA=$OUT/root
REQ=$ROOT/scripts/gpu/requirements-build.txt
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi
NV=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
[ -x "$NV/bin/nvcc" ] || { echo "build-cuda: no nvcc under $NV" >&2; exit 1; }

rm -rf "$CUDA" && mkdir -p "$CUDA/lib/stubs"
for d in bin include nvvm; do ln -s "$NV/$d" "$CUDA/$d"; done
for lib in "$NV"/lib/lib*.so.*; do
  base=$(basename "$lib")
  ln -sf "$lib" "$CUDA/lib/${base%%.so.*}.so"
done

# The stub driver: every cu* function cudarc's bindings call, returning an error.
CUDARC=$(cd "$ROOT" && cargo metadata --format-version 1 --features cuda 2>/dev/null |
  "$VENV/bin/python" -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')
{
  echo '/* Link-time stand-in for the NVIDIA driver (made by scripts/build-cuda.sh). */'
  grep -ohE '^pub unsafe fn cu[A-Za-z0-9_]+' "$CUDARC/src/driver/sys/mod.rs" | sed 's/pub unsafe fn //' | sort -u |
    sed 's/.*/int &(void) { return 999; }/'
} > "$CUDA/lib/stubs/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib/stubs/libcuda.so" "$CUDA/lib/stubs/cuda_stub.c"

export CUDA_ROOT=$CUDA CUDA_PATH=$CUDA CUDA_HOME=$CUDA
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export PATH=$CUDA/bin:$PATH
export CARGO_TARGET_DIR=$OUT/build
(cd "$ROOT" && cargo build --release --features cuda)
strip -o "$OUT/headscan" "$OUT/build/release/headscan"
gzip -9 -c "$OUT/headscan" > "$OUT/headscan.gz"
ls -l "$OUT/headscan" "$OUT/headscan.gz"
echo "needs at run time: $(readelf -d "$OUT/headscan" | grep -o 'lib[a-zA-Z]*\.so[.0-9]*' | tr '\n' ' ')"
