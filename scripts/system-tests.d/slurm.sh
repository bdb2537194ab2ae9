#!/usr/bin/env bash
# Slurm for real: a single-node Slurm on this machine (Debian's slurm-wlm
# and munge, installed when missing; slurmctld + slurmd on localhost with a
# private slurm.conf and munge key, 8 CPUs declared with
# SlurmdParameters=config_overrides). This machine has no GPU, so the
# scripts' `#SBATCH --gres=gpu:1` is cleared by SBATCH_GRES=none (the
# environment overrides script directives) and HEADSCAN_DEVICE=cpu.
# Runs deploy/slurm as a user would: submit.sh (coordinator.sbatch + a
# 2-worker array of workers.sbatch finding it through the rendezvous file)
# and engine.sh (plan, an --array of task.sbatch, reduce.sbatch with
# --dependency=afterok), on the demo dataset in 4 shards, and checks both
# outputs equal an embedded `headscan run` byte for byte. Needs root (it
# starts daemons); every step is bounded by a timeout; every daemon it
# started is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
if [ "$(id -u)" -ne 0 ]; then echo "slurm: needs root to run slurmctld/slurmd/munged"; exit 1; fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 ||
        { timeout 300 apt-get update -q >/dev/null && timeout 900 apt-get install -y -q slurm-wlm munge >/dev/null; }
fi
cargo build -q --bin headscan
export PATH=$root/target/debug:$PATH RUST_LOG=warn
mkdir -p target/ci-tools
work=$(mktemp -d "$root/target/ci-tools/slurm.XXXXXX")
chmod 755 "$work"
pids=()
munge_started=""
cleanup() {
    set +e
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ]; then
        timeout 20 scancel --full --signal=TERM --partition=ci >/dev/null 2>&1
        sleep 2
        timeout 20 scancel --partition=ci >/dev/null 2>&1
    fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do timeout 20 tail --pid="$p" -f /dev/null 2>/dev/null; done
    if [ -n "$munge_started" ]; then kill -TERM "$(cat "$work/munged.pid" 2>/dev/null)" 2>/dev/null; fi
    # Job processes (workers, coordinator) are children of slurmstepd: gone with slurmd.
    if [ "${KEEP_SLURM_WORK:-}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$work"/log/*.log "$work"/hh/*.log "$work"/hh/logs/*.log "$work"/hh/coordinator.out; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    exit 1
}

# munge: a key of our own, a daemon of our own on a private socket.
mkdir -p "$work/munge" "$work/log"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge"; chmod 400 "$work/munge/munge.key"
munge_socket=$work/munge/munge.socket
# (as root: --force; the key and socket are this test's own)
munged --force --key-file="$work/munge/munge.key" --socket="$munge_socket" \
    --pid-file="$work/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" 2>/dev/null
munge_started=1
timeout 10 bash -c "until [ -S '$munge_socket' ]; do sleep 0.1; done" || fail "munged did not start"

# slurm.conf for one node, localhost.
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF=$work/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=headscan-ci
SlurmctldHost=localhost
SlurmctldPort=$((17000 + RANDOM % 1000))
SlurmdPort=$((18000 + RANDOM % 1000))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=600
KillWait=10
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=32000 State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -i -f "$SLURM_CONF" > "$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" > "$work/log/slurmd.out" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 1 120); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle*|mixed*) ready=1; break ;;
        inval*) break ;;
        drain*|down*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
[ -n "$ready" ] || fail "the Slurm node did not become idle (state: ${state:-none})"
echo "slurm: node localhost idle ($(sinfo -h -o '%c CPUs'))"

wait_jobs_gone() { # seconds
    local left=$1
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do
        [ "$left" -gt 0 ] || return 1
        sleep 1; left=$((left - 1))
    done
}
same_tables() {
    for t in heads.parquet layers.parquet null.parquet aa_similarity.parquet; do
        cmp "$1/$t" "$2/$t" || fail "$3: $t differs from headscan run"
    done
    echo "ok: $3 equals the embedded headscan run byte for byte"
}

cfg=$root/configs/demo.toml
model=$root/tests/fixtures/models/esm2
headscan ingest --format proteinnet --input "$root/examples/data/demo.proteinnet" --out "$work/ds" --shard-rows 3 2>/dev/null
headscan run --config "$cfg" --model "$model" --dataset "$work/ds" --out "$work/run-out"
cd "$work"

# 1. Coordinator + worker array.
export SBATCH_GRES=none
export HEADSCAN_HOME=$work/hh HEADSCAN_STORE=$work/store HEADSCAN_LISTEN=127.0.0.1:0 HEADSCAN_DEVICE=cpu
job=$(timeout 300 "$root/deploy/slurm/submit.sh" "$cfg" 2 --model "$model" --dataset "$work/ds" \
    --out "$work/cluster-out" 2> "$work/log/submit.log" | tail -n 1) || fail "submit.sh failed"
echo "slurm: job $job done by $(squeue -h -n headscan-worker -o %i | wc -l) worker array task(s)"
[ "$(squeue -h -n headscan-worker -t R -o %i | wc -l)" -eq 2 ] || fail "expected 2 running workers"
same_tables "$work/run-out" "$work/cluster-out" "coordinator.sbatch + workers.sbatch array"
# scancel sends SIGTERM: workers and the coordinator leave cleanly.
scancel --full --signal=TERM --name=headscan-worker
scancel --full --signal=TERM --name=headscan-coordinator
wait_jobs_gone 60 || fail "workers/coordinator did not stop on SIGTERM"
[ ! -e "$HEADSCAN_HOME/coordinator-url" ] || fail "the coordinator left its rendezvous file"

# 2. Engine-native: plan, array of tasks, reduce after afterok.
reduce=$(timeout 120 "$root/deploy/slurm/engine.sh" "$cfg" "$work/plan" --model "$model" \
    --dataset "$work/ds" --results "$work/engine-out" 2> "$work/log/engine.log" | tail -n 1) || fail "engine.sh failed"
wait_jobs_gone 300 || fail "the engine-native jobs did not finish in 300 s"
state=$(scontrol show job "$reduce" | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
[ "$state" = COMPLETED ] || fail "reduce job $reduce ended $state"
tail -n 1 "$HEADSCAN_HOME/logs/reduce-$reduce.log" | grep -qx "$work/engine-out" || fail "reduce did not print its output URL"
[ "$(find "$work/plan" -path '*/commits/*.json' | wc -l)" -eq 4 ] || fail "expected 4 committed shards"
same_tables "$work/run-out" "$work/engine-out" "engine.sh (task array + afterok reduce)"
echo "slurm: both deployments equal headscan run"
