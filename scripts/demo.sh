#!/usr/bin/env bash
# The README's main job: a trained antibody language model on real structures.
#
# 1. Fetches AntiBERTy (PyPI antiberty==0.1.3, 96 MB, once) with
#    scripts/fetch-model.sh into $HEADSCAN_CACHE/models/antiberty (default
#    ~/.cache/headscan/models/antiberty);
# 2. ingests the bundled structures of examples/structures/ (one antibody,
#    three T-cell receptors; examples/README.md) to /tmp/headscan-antibodies;
# 3. runs contacts + amino acids over every attention head
#    (configs/antiberty_contacts.toml) into /tmp/headscan-antiberty-out;
# 4. prints the heads that align best with contacts, with their enrichment
#    over the contact background and their significance.
#
# When the model cannot be fetched (no network, no pip), it says so and runs
# the offline demo instead: the tiny random ESM-2 model on synthetic proteins
# (configs/demo.toml), whose alignment is at background level.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${HEADSCAN_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/headscan}}
cache=${cache:-$HOME/.cache/headscan}
model="$cache/models/antiberty"

headscan() { cargo run --quiet -- "$@"; }
top_heads() { headscan results top --results "$1" --feature "$2" --top "$3"; }

if scripts/fetch-model.sh antiberty "$model"; then
    headscan ingest --format structures --input examples/structures --out /tmp/headscan-antibodies --overwrite
    headscan run --config configs/antiberty_contacts.toml --model "$model"
    echo
    echo "AntiBERTy on examples/structures (tables and report/index.html in /tmp/headscan-antiberty-out):"
    top_heads /tmp/headscan-antiberty-out contact 5
else
    echo "demo: AntiBERTy could not be fetched (see above); falling back to the offline demo:" \
        "a tiny RANDOM ESM-2 model on synthetic proteins, which shows background-level alignment." >&2
    headscan ingest --format proteinnet --input examples/data/demo.proteinnet --out /tmp/headscan-demo --overwrite
    headscan run --config configs/demo.toml
    echo
    echo "Random model on synthetic proteins (tables and report/index.html in /tmp/headscan-demo-out):"
    top_heads /tmp/headscan-demo-out contact 5
fi
