#!/bin/bash
# Engine-native job on Slurm, no coordinator:
#   deploy/slurm/engine.sh JOB.toml PLAN_URL [headscan plan flags…]
# `headscan plan` writes the task list and prints N; an N-task array of
# task.sbatch (--array=0-(N-1)) computes and commits the shards; reduce.sbatch
# runs with --dependency=afterok on the array. Prints the reduce job id last;
# its log ends with the output URL.
set -euo pipefail
config=${1:?usage: engine.sh JOB.toml PLAN_URL [plan flags]}
plan=${2:?usage: engine.sh JOB.toml PLAN_URL [plan flags]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
logs=${HEADSCAN_HOME:-$HOME/.headscan}/logs
mkdir -p "$logs"
n=$(headscan plan --config "$config" --out "$plan" "$@" | tail -n 1)
echo "plan: $n task(s) at $plan" >&2
array=$(sbatch --parsable --array="0-$((n - 1))" --export="ALL,HEADSCAN_PLAN=$plan" \
    --output="$logs/task-%A_%a.log" "$here/task.sbatch")
echo "tasks: Slurm array job $array" >&2
reduce=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
    --export="ALL,HEADSCAN_PLAN=$plan" --output="$logs/reduce-%j.log" "$here/reduce.sbatch")
echo "reduce: Slurm job $reduce (after $array)" >&2
echo "$reduce"
