#!/usr/bin/env bash
# Issue 10 (interactive report): a job over real structures from the shared
# data (tiny fixture ESM-2), its report rebuilt with `headscan report`, then
# opened from file:// in headless Chromium driven by playwright-core: no
# console errors, no network requests, hovering and clicking a heatmap cell
# shows heads.parquet's numbers (read independently by `headscan results
# top`), the keyboard moves over the grid, a sequence page (run --visualize)
# draws arcs and a non-blank WebGL 3D Cα view (SwiftShader) that rotates on
# drag and keys and zooms, and without WebGL the 2D fallback.
# Screenshots: target/system-tests/report/.
# Installs Debian's chromium and npm playwright-core (pinned, under target/).
set -euo pipefail
cd "$(dirname "$0")/../.."
PLAYWRIGHT_VERSION=1.65.1
data="${HEADSCAN_TEST_DATA:-../shared/data}"
if [ ! -d "$data/structures" ]; then
    if [ "${CI:-}" = "true" ]; then echo "FAIL: shared test data not found at $data"; exit 1; fi
    echo "SKIPPED: shared test data not found at $data (set HEADSCAN_TEST_DATA)"
    exit 0
fi
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
prefix=target/system-tests/node
if [ "$(cat "$prefix/node_modules/playwright-core/package.json" 2>/dev/null | grep -o "\"version\": \"$PLAYWRIGHT_VERSION\"")" = "" ]; then
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION"
fi
cargo build --quiet --bin headscan
bin=target/debug/headscan
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
art=target/system-tests/report
rm -rf "$art"
mkdir -p "$art"
RUST_LOG=warn "$bin" ingest --format structures --input "$data/structures" --out "$work/ds"
RUST_LOG=warn "$bin" run --config configs/demo.toml --model tests/fixtures/models/esm2 \
    --dataset "$work/ds" --out "$work/job" --features contact,aa --visualize 1acj.A,1hwu.A
# The sequence pages come from the attention the job's workers stored (sequences.parquet).
RUST_LOG=warn "$bin" report --results "file://$work/job" --out "$art/site"
"$bin" results top --results "$work/job" --feature contact --top 1 > "$art/top.txt"
# A report without sequence pages: the same job's tables without sequences.parquet.
mkdir -p "$work/plain"
cp "$work/job/"*.parquet "$work/job/summary.json" "$work/plain/"
rm "$work/plain/sequences.parquet"
RUST_LOG=warn "$bin" report --results "$work/plain" --out "$work/plain/report" > /dev/null
PLAYWRIGHT_PREFIX="$prefix" timeout 300 node tests/browser/report.mjs "$art/site" contact "$art/top.txt" "$art" "$work/plain/report"
echo "report-browser: passed (screenshots in $art)"
