#!/usr/bin/env bash
# Kubernetes manifests: render the kustomize base, the overlays `cpu` and
# `gpu` and the engine-native Jobs with a real kustomize (the one built into
# Debian's kubectl, `kubectl kustomize`; the .deb is unpacked under target/,
# no root needed), then validate every rendered object offline against the
# Kubernetes schemas with PyPI's kubernetes-validate (pinned, venv under
# target/), strictly (unknown fields are errors). A deliberately broken
# manifest must fail, so the check cannot pass vacuously.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=target/ci-tools/k8s
k8s_version=1.30.0
mkdir -p "$tools"
kubectl=$tools/root/usr/bin/kubectl
if [ ! -x "$kubectl" ]; then
    (cd "$tools" && rm -f kubernetes-client_*.deb && apt-get download kubernetes-client >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get download kubernetes-client >/dev/null; })
    dpkg -x "$tools"/kubernetes-client_*.deb "$tools/root"
fi
if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q -r deploy/k8s/requirements.txt
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r deploy/k8s "$work/k8s"
# The token is never committed; kustomize's secretGenerator needs the file.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/k8s/base/token"
rendered=()
for dir in base overlays/cpu overlays/gpu engine-native; do
    out="$work/$(echo "$dir" | tr / -).yaml"
    "$kubectl" kustomize "$work/k8s/$dir" > "$out"
    rendered+=("$out")
    echo "rendered $dir: $(grep -c '^kind:' "$out") objects"
done
"$tools/venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "${rendered[@]}"
# What the overlays must change.
gpu="$work/overlays-gpu.yaml"
grep -q 'nvidia.com/gpu: 1' "$gpu" || { echo "gpu overlay requests no nvidia.com/gpu"; exit 1; }
grep -q -- '--device=cuda:0' "$gpu" || { echo "gpu overlay does not use cuda:0"; exit 1; }
if grep -q 'nvidia.com/gpu' "$work/overlays-cpu.yaml"; then echo "cpu overlay requests a GPU"; exit 1; fi
grep -q 'completionMode: Indexed' "$work/engine-native.yaml" || { echo "no Indexed Job"; exit 1; }
# Negative control: an unknown field and a wrong type must be refused.
sed -e 's/^  replicas: 2$/  replicas: "two"/' "$work/base.yaml" > "$work/broken.yaml"
if "$tools/venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$work/broken.yaml" >/dev/null 2>&1; then
    echo "kubernetes-validate accepted a broken manifest"; exit 1
fi
echo "k8s manifests: base, cpu, gpu, engine-native rendered and valid against Kubernetes $k8s_version"
