#!/bin/bash
# Engine-native job on Kubernetes, no coordinator:
#   deploy/k8s/engine-native/run.sh CONFIG.toml s3://bucket/plans/job1 [gpu]
# 1. `headscan plan` (here, with access to the store) writes the task list
#    and prints N; 2. the Indexed Job headscan-task runs indices 0..N-1;
# 3. once it completed, the Job headscan-reduce writes the outputs.
# Needs kubectl and the headscan binary; object-store credentials from the
# usual AWS_* (or GCS/Azure) variables here and the Secret headscan-s3 there.
set -euo pipefail
config=${1:?usage: run.sh CONFIG.toml PLAN_URL [gpu]}
plan=${2:?usage: run.sh CONFIG.toml PLAN_URL [gpu]}
device=${3:-cpu}
here=$(cd "$(dirname "$0")" && pwd)
n=$(headscan plan --config "$config" --out "$plan" | tail -n 1)
echo "plan: $n task(s) at $plan" >&2
render() {
    kubectl kustomize "$here" |
        sed -e "s|s3://my-bucket/plans/headscan|$plan|" \
            -e "s|^  completions: 1$|  completions: $n|" \
            -e "s|^  parallelism: 1$|  parallelism: $(( n < 16 ? n : 16 ))|"
}
if [ "$device" = gpu ]; then
    render | sed -e 's|image: headscan:cpu|image: headscan:cuda|' -e 's|--device=cpu|--device=cuda:0|' \
        -e 's|^            cpu: "4"$|            cpu: "4"\n            nvidia.com/gpu: 1|' | kubectl apply -f -
else
    render | kubectl apply -f -
fi
kubectl wait --for=condition=complete job/headscan-task --timeout=24h
kubectl patch job headscan-reduce --type=merge -p '{"spec":{"suspend":false}}'
kubectl wait --for=condition=complete job/headscan-reduce --timeout=2h
kubectl logs job/headscan-reduce | tail -n 1
