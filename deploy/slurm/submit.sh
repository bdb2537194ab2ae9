#!/bin/bash
# Coordinator + worker array on Slurm, then one job submitted to it:
#   deploy/slurm/submit.sh JOB.toml WORKERS [headscan submit flags…]
# Starts coordinator.sbatch unless a coordinator already answers at the
# rendezvous file, starts a WORKERS-task array of workers.sbatch, submits
# the job with `headscan submit --wait` (the flags of `run` may follow) and
# prints the job id last. Environment as in coordinator.sbatch.
set -euo pipefail
config=${1:?usage: submit.sh JOB.toml WORKERS [submit flags]}
workers=${2:?usage: submit.sh JOB.toml WORKERS [submit flags]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
home=${HEADSCAN_HOME:-$HOME/.headscan}
mkdir -p "$home"
token=()
if [ -n "${HEADSCAN_TOKEN_FILE:-}" ]; then token=(--token-file "$HEADSCAN_TOKEN_FILE"); fi
if ! { [ -s "$home/coordinator-url" ] && headscan status --coordinator "$(cat "$home/coordinator-url")" "${token[@]}" >/dev/null 2>&1; }; then
    rm -f "$home/coordinator-url"
    coord=$(sbatch --parsable --output="$home/coordinator-%j.log" "$here/coordinator.sbatch")
    echo "coordinator: Slurm job $coord" >&2
fi
array=$(sbatch --parsable --array="0-$((workers - 1))" --output="$home/worker-%A_%a.log" "$here/workers.sbatch")
echo "workers: Slurm array job $array" >&2
for _ in $(seq 1 600); do [ -s "$home/coordinator-url" ] && break; sleep 1; done
url=$(cat "$home/coordinator-url")
headscan submit --coordinator "$url" "${token[@]}" --config "$config" --wait "$@"
