#!/usr/bin/env bash
# The scale run (issue 9): 1,000,000 generated sequences (lengths 50–650, the
# ingest benchmark's recipe) ingested, then analysed by a coordinator and two
# worker processes on this machine with the tiny ESM-2 fixture (`aa`
# features, null off); prints wall times and each process's peak RSS.
#
#   bench/scale.sh              (SCALE_DIR=/tmp/headscan-scale, needs ~1 GB)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${SCALE_DIR:-/tmp/headscan-scale}
H=$ROOT/target/release/headscan
MODEL=$ROOT/tests/fixtures/models/esm2
PORT=${SCALE_PORT:-50777}
mkdir -p "$W"
(cd "$ROOT" && cargo build --release -q)
if [ ! -f "$W/big.fasta" ]; then
  python3 - "$W/small.fasta" <<'PY'
import random, sys
rng = random.Random(1); AA = "ACDEFGHIKLMNPQRSTVWY"
with open(sys.argv[1], "w") as f:
    for i in range(50000):
        s = "".join(rng.choices(AA, k=rng.randint(50, 650)))
        f.write(f">seq{i}\n" + "".join(s[k:k+60] + "\n" for k in range(0, len(s), 60)))
PY
  for i in $(seq 1 20); do cat "$W/small.fasta"; done | awk '/^>/{print ">s" NR; next}{print}' > "$W/big.fasta"
fi
rm -rf "$W/ds" "$W/state.db"* "$W/store" "$W/out"
/usr/bin/time -o "$W/ingest.time" -f "%e s %M KB" "$H" ingest --format fasta --input "$W/big.fasta" --out "$W/ds" 2>&1 | tail -1
/usr/bin/time -o "$W/coordinator.time" -f "%e s %M KB" "$H" coordinator --listen 127.0.0.1:$PORT \
  --state "$W/state.db" --store "$W/store" > "$W/coordinator.out" 2> "$W/coordinator.log" &
T0=$!
sleep 1
/usr/bin/time -o "$W/worker1.time" -f "%e s %M KB" "$H" worker --coordinator http://127.0.0.1:$PORT > /dev/null 2> "$W/worker1.log" &
T1=$!
/usr/bin/time -o "$W/worker2.time" -f "%e s %M KB" "$H" worker --coordinator http://127.0.0.1:$PORT > /dev/null 2> "$W/worker2.log" &
T2=$!
start=$(date +%s.%N)
/usr/bin/time -o "$W/submit.time" -f "%e s %M KB" "$H" submit --coordinator http://127.0.0.1:$PORT --model "$MODEL" \
  --dataset "$W/ds" --features aa --null-samples 0 --batch-size 32 --out "$W/out" --wait > "$W/submit.out" 2> "$W/submit.log"
end=$(date +%s.%N)
for t in $T1 $T2 $T0; do kill -TERM $(pgrep -P $t) 2>/dev/null || true; wait $t 2>/dev/null || true; done
echo "submit to succeeded: $(python3 -c "print(round($end - $start, 1))") s"
for f in ingest coordinator worker1 worker2 submit; do echo "$f: $(tail -1 "$W/$f.time") (wall, peak RSS)"; done
