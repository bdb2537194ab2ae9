#!/usr/bin/env bash
# Slow system tests that need more than cargo: a real Slurm, a local S3
# server, Kubernetes schema validation, a headless browser. CI calls this
# after `cargo test --workspace`; each scripts/system-tests.d/*.sh installs
# what it needs (apt, pip into a venv under target/, npm under target/) and
# exits non-zero on failure. Run one alone: scripts/system-tests.sh NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
scripts=(scripts/system-tests.d/*.sh)
if [ $# -gt 0 ]; then
    scripts=()
    for name in "$@"; do scripts+=("scripts/system-tests.d/$name.sh"); done
fi
passed=0
failed=0
for script in "${scripts[@]}"; do
    echo "=== system test: $script"
    start=$(date +%s)
    if bash "$script"; then
        passed=$((passed + 1))
        echo "=== passed: $script ($(( $(date +%s) - start )) s)"
    else
        failed=$((failed + 1))
        echo "=== FAILED: $script ($(( $(date +%s) - start )) s)"
    fi
done
echo "system tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
