#!/usr/bin/env bash
# Fetches a trained protein language model from a package registry and lays
# it out as a Hugging Face model directory that `headscan --model DIR` reads.
#
#   scripts/fetch-model.sh antiberty DIR
#
# antiberty: AntiBERTy (Ruffolo, Gray & Sulam 2021, arXiv:2112.07782; MIT
# licence), a BERT of 8 layers x 8 heads trained on 558M natural antibody
# sequences, shipped inside PyPI's `antiberty==0.1.3` wheel (96 MB). The wheel
# is downloaded with pip (`python3 -m pip download --no-deps`), its SHA-256 is
# checked against the value pinned below, and DIR receives, unchanged:
#   config.json, pytorch_model.bin   (antiberty/trained_models/AntiBERTy_md_smooth/)
#   vocab.txt                        (antiberty/trained_models/)
#   LICENSE                          (the wheel's LICENSE.MD)
# plus a README.md naming the source and licence. The checkpoint is the one
# transformers 4.5 saved for the AntiBERTy task model: the encoder's tensors
# carry a `bert.` prefix, beside extra heads (`cls.*`) and a `position_ids`
# buffer; headscan loads the `bert.*` tensors by name.
#
# Idempotent: a complete DIR (stamp file `.headscan-fetch` matching the pinned
# wheel) is left alone. DIR is assembled beside itself and renamed into place,
# so an interrupted or concurrent fetch never leaves a half-written model.
#
# Exit status: 0 = DIR ready; 2 = usage error; 3 = the registry could not be
# reached (or python3/pip are missing); 1 = anything else (e.g. a checksum
# mismatch), which is never a network problem.
set -euo pipefail

usage() {
    echo "usage: $0 antiberty DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
model=$1
dir=${2%/}
[ -n "$dir" ] || usage

case "$model" in
antiberty)
    package=antiberty
    version=0.1.3
    wheel=antiberty-0.1.3-py3-none-any.whl
    sha256=30d910992b190013871bac49cdc032e01a19339f7d2b958ab99b0eb44638352a
    weights_bytes=104174334
    ;;
*)
    echo "error: unknown model '$model' (known: antiberty)" >&2
    exit 2
    ;;
esac
stamp="$package $version sha256:$sha256"

complete() {
    [ -f "$1/.headscan-fetch" ] && [ "$(cat "$1/.headscan-fetch")" = "$stamp" ] &&
        [ -f "$1/config.json" ] && [ -f "$1/vocab.txt" ] &&
        [ "$(wc -c <"$1/pytorch_model.bin" 2>/dev/null || echo 0)" -eq "$weights_bytes" ]
}

if complete "$dir"; then
    echo "AntiBERTy ($package==$version) already in $dir" >&2
    exit 0
fi
if [ -e "$dir" ] && [ ! -f "$dir/.headscan-fetch" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "error: $dir exists and was not made by $0; remove it or choose another directory" >&2
    exit 1
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: cannot fetch AntiBERTy: python3 with pip is needed to download $package==$version from PyPI" >&2
    exit 3
fi

parent=$(dirname "$dir")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.fetch-$model.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "downloading $package==$version from PyPI (96 MB) ..." >&2
# Short timeouts: an unreachable registry fails in about a minute, not after
# pip's configured default of several minutes per try.
if ! python3 -m pip download --no-deps --only-binary :all: --disable-pip-version-check \
    --timeout 20 --retries 2 --dest "$work/dl" "$package==$version" >"$work/pip.log" 2>&1; then
    echo "error: cannot download $package==$version from PyPI (is the package registry reachable?); pip said:" >&2
    tail -n 5 "$work/pip.log" | sed 's/^/  /' >&2
    exit 3
fi
got=$(sha256sum "$work/dl/$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
    echo "error: $wheel has SHA-256 $got, expected $sha256 (pinned in $0); refusing to use it" >&2
    exit 1
fi

mkdir "$work/model"
python3 - "$work/dl/$wheel" "$work/model" <<'EOF'
import sys, zipfile
from pathlib import Path

wheel, out = sys.argv[1], Path(sys.argv[2])
members = {
    "antiberty/trained_models/AntiBERTy_md_smooth/config.json": "config.json",
    "antiberty/trained_models/AntiBERTy_md_smooth/pytorch_model.bin": "pytorch_model.bin",
    "antiberty/trained_models/vocab.txt": "vocab.txt",
    "antiberty-0.1.3.dist-info/LICENSE.MD": "LICENSE",
}
with zipfile.ZipFile(wheel) as z:
    for member, name in members.items():
        with z.open(member) as src, open(out / name, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
EOF
cat >"$work/model/README.md" <<EOF
# AntiBERTy, as a Hugging Face model directory for headscan

- Model: AntiBERTy (checkpoint \`AntiBERTy_md_smooth\`), a BERT encoder of 8
  layers x 8 heads, hidden size 512, vocabulary of the 20 amino acids plus 5
  special tokens, trained on 558M natural antibody sequences from OAS.
  Ruffolo, Gray & Sulam, "Deciphering antibody affinity maturation with
  language models and weakly supervised learning", arXiv:2112.07782 (2021).
- Source: PyPI package \`$package==$version\`, wheel \`$wheel\`
  (SHA-256 \`$sha256\`), downloaded with \`python3 -m pip download --no-deps\`.
  Files, byte for byte: \`antiberty/trained_models/AntiBERTy_md_smooth/config.json\`,
  \`.../AntiBERTy_md_smooth/pytorch_model.bin\`, \`antiberty/trained_models/vocab.txt\`.
- Licence: MIT, Copyright (c) 2023 Jeffrey Ruffolo (\`LICENSE\`, from the wheel).
- Checkpoint layout: saved by transformers 4.5.1 for the AntiBERTy task model;
  the encoder's tensors are named \`bert.*\`, beside the task heads (\`cls.*\`)
  and a \`position_ids\` buffer. headscan (and transformers' \`BertModel\`) load
  the \`bert.*\` tensors by name and ignore the rest.
- Tokens: \`[CLS]\` + one token per residue + \`[SEP]\`; letters outside the
  vocabulary (X, B, Z, U, O) become \`[UNK]\`.

Made by headscan's \`scripts/fetch-model.sh antiberty DIR\`.
EOF
printf '%s\n' "$stamp" >"$work/model/.headscan-fetch"

# Replace an older copy of ours (it has a stamp), then move into place; if a
# concurrent fetch won the race, keep its (identical) copy.
if [ -e "$dir" ]; then
    if complete "$dir"; then
        echo "AntiBERTy ($package==$version) already in $dir" >&2
        exit 0
    fi
    mv "$dir" "$work/old"
fi
if ! mv -T "$work/model" "$dir" 2>/dev/null; then
    complete "$dir" || { echo "error: could not move the model into $dir" >&2; exit 1; }
fi
echo "AntiBERTy ($package==$version, MIT licence) ready in $dir" >&2
