#!/usr/bin/env bash
# S3 for real protocol: a local S3-compatible server (moto's, from PyPI,
# pinned in a venv under target/, on 127.0.0.1) and the same jobs on s3://
# and on local files: ingest, `run` (model, dataset and outputs on S3), a
# coordinator whose --store is on S3 with a worker (`submit --wait`,
# `results list`), engine-native plan/task/reduce with the plan on S3, and
# `results top --results s3://…`. Every table must equal the local job's
# byte for byte.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
tools=target/ci-tools/s3
mkdir -p "$tools"
if [ ! -x "$tools/venv/bin/moto_server" ]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q -r scripts/system-tests.d/s3-requirements.txt
fi
cargo build -q --bin headscan
hs=$root/target/debug/headscan
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing RUST_LOG=warn
py() { "$tools/venv/bin/python" - "$@"; }
for _ in $(seq 1 100); do
    py <<'PY' 2>/dev/null && break
import boto3, os
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_buckets()
PY
    sleep 0.2
done
py <<'PY'
import boto3, os
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="headscan")
PY
# Upload the fixture model: the model, too, is read from S3.
py "$root/tests/fixtures/models/esm2" <<'PY'
import boto3, os, sys, pathlib
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
src = pathlib.Path(sys.argv[1])
for f in sorted(src.rglob("*")):
    if f.is_file():
        s3.upload_file(str(f), "headscan", "models/esm2/" + f.relative_to(src).as_posix())
PY
fetch() { # fetch s3://headscan/PREFIX into DIR
    py "$1" "$2" <<'PY'
import boto3, os, sys, pathlib
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
prefix, dest = sys.argv[1].rstrip("/") + "/", pathlib.Path(sys.argv[2])
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="headscan", Prefix=prefix):
    for o in page.get("Contents", []):
        out = dest / o["Key"][len(prefix):]
        out.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file("headscan", o["Key"], str(out))
        n += 1
if n == 0:
    sys.exit(f"nothing under s3://headscan/{prefix}")
PY
}
same_tables() { # local dir, s3 prefix, what
    rm -rf "$work/fetched" && fetch "$2" "$work/fetched"
    for t in heads.parquet layers.parquet null.parquet aa_similarity.parquet; do
        cmp "$1/$t" "$work/fetched/$t" || { echo "FAIL: $3: $t differs from the local job"; exit 1; }
    done
    echo "ok: $3 equals the local job byte for byte"
}
cfg=$root/configs/demo.toml
model_local=$root/tests/fixtures/models/esm2
input=$root/examples/data/demo.proteinnet

# Ingest, locally and to S3: the same dataset content.
"$hs" ingest --format proteinnet --input "$input" --out "$work/ds" --shard-rows 3
"$hs" ingest --format proteinnet --input "$input" --out s3://headscan/ds --shard-rows 3
content_hash() { "$hs" dataset inspect "$1" --json | "$tools/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["content_hash"])'; }
local_hash=$(content_hash "$work/ds")
s3_hash=$(content_hash s3://headscan/ds)
[ "$local_hash" = "$s3_hash" ] || { echo "FAIL: ingest to S3 gives content $s3_hash, locally $local_hash"; exit 1; }
echo "ok: ingest to S3 equals the local dataset ($s3_hash)"

# The local reference job.
"$hs" run --config "$cfg" --model "$model_local" --dataset "$work/ds" --out "$work/local-out"

# run: model, dataset and outputs on S3.
"$hs" run --config "$cfg" --model s3://headscan/models/esm2 --dataset s3://headscan/ds --out s3://headscan/run-out
same_tables "$work/local-out" run-out "run on s3://"

# results top reads heads.parquet from S3.
"$hs" results top --results "$work/local-out" --feature contact > "$work/top-local.txt"
"$hs" results top --results s3://headscan/run-out --feature contact > "$work/top-s3.txt"
cmp "$work/top-local.txt" "$work/top-s3.txt" || { echo "FAIL: results top differs on S3"; exit 1; }
echo "ok: results top on s3:// equals the local one"

# Coordinator with its store on S3 (partials, default outputs) and a worker.
"$hs" coordinator --listen 127.0.0.1:0 --state "$work/state.db" --store s3://headscan/store \
    > "$work/coordinator.out" 2> "$work/coordinator.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '127.0.0.1:' "$work/coordinator.out" 2>/dev/null && break; sleep 0.1; done
addr=$(head -n 1 "$work/coordinator.out" | awk '{print $NF}')
url=http://$addr
"$hs" worker --coordinator "$url" 2> "$work/worker.log" &
pids+=($!)
job=$(timeout 300 "$hs" submit --coordinator "$url" --config "$cfg" --model s3://headscan/models/esm2 \
    --dataset s3://headscan/ds --out s3://headscan/submit-out --wait | tail -n 1)
same_tables "$work/local-out" submit-out "coordinator + worker, store on s3://"
fetch "store/jobs/$job/partials" "$work/partials" >/dev/null
[ "$(ls "$work/partials" | wc -l)" -eq 4 ] || { echo "FAIL: expected 4 partials on S3"; ls "$work/partials"; exit 1; }
"$hs" results list --coordinator "$url" | grep -q "$job" || { echo "FAIL: results list does not show $job"; exit 1; }
echo "ok: partials at s3://headscan/store/jobs/$job/partials; results list shows the job"

# Engine-native with the plan, partials and outputs on S3.
n=$("$hs" plan --config "$cfg" --model s3://headscan/models/esm2 --dataset s3://headscan/ds \
    --results s3://headscan/plan-out --out s3://headscan/plan | tail -n 1)
for i in $(seq 0 $((n - 1))); do "$hs" task --plan s3://headscan/plan --index "$i"; done
out=$("$hs" reduce --plan s3://headscan/plan | tail -n 1)
[ "$out" = "s3://headscan/plan-out" ] || { echo "FAIL: reduce printed $out"; exit 1; }
fetch "plan/jobs" "$work/plan-jobs" >/dev/null
[ "$(find "$work/plan-jobs" -path '*/commits/*.json' | wc -l)" -eq "$n" ] || { echo "FAIL: expected $n commit markers"; exit 1; }
same_tables "$work/local-out" plan-out "plan/task/reduce on s3://"

# The registry watch on S3: a model under s3://headscan/registry triggers
# exactly one job (one dataset × one analysis), and re-polling none.
py "$root/tests/fixtures/models/esm2" <<'PY'
import boto3, os, sys, pathlib
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
src = pathlib.Path(sys.argv[1])
for name in ["model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json"]:
    s3.upload_file(str(src / name), "headscan", "registry/m1/" + name)
PY
printf 'datasets = ["s3://headscan/ds"]\n[[analysis]]\nname = "aa"\nfeatures = ["aa"]\n' > "$work/recompute.toml"
HEADSCAN_CACHE=$work/cache "$hs" coordinator --listen 127.0.0.1:0 --state "$work/state2.db" --store s3://headscan/store2 \
    --watch-models s3://headscan/registry --recompute "$work/recompute.toml" --poll-s 0.2 \
    > "$work/coordinator2.out" 2> "$work/coordinator2.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '127.0.0.1:' "$work/coordinator2.out" 2>/dev/null && break; sleep 0.1; done
url2=http://$(head -n 1 "$work/coordinator2.out" | awk '{print $NF}')
count_jobs() { "$hs" status --coordinator "$url2" | grep -c '^j-' || true; }
for _ in $(seq 1 150); do [ "$(count_jobs)" -ge 1 ] && break; sleep 0.2; done
sleep 2
[ "$(count_jobs)" -eq 1 ] || { echo "FAIL: the S3 registry gave $(count_jobs) jobs, expected 1"; cat "$work/coordinator2.log"; exit 1; }
rm -rf "$work/ledger" && fetch store2/registry "$work/ledger" >/dev/null
[ "$(find "$work/ledger" -maxdepth 1 -name '*.json' | wc -l)" -eq 1 ] || { echo "FAIL: expected one ledger entry on S3"; exit 1; }
echo "ok: the registry on s3:// triggered exactly one job, ledger on s3://"
echo "s3: every job on s3:// equals the same job on local files"
