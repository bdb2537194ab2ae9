#!/usr/bin/env bash
# Vendors the report's WebGL library: OGL (a small WebGL scene graph,
# Unlicense), pinned, installed from the npm registry with `npm install` into a
# temporary folder, with esbuild (pinned, from npm) bundling only the classes
# the sequence pages use into one classic script (IIFE, global `OGL`; ES
# modules are blocked from file://). Writes coordinator/src/report/assets/
# ogl.min.js (embedded in the binary with include_str! and written once per
# report with sequence pages) and ogl-LICENSE.txt (the licence section of the
# package's README; the package ships no separate licence file). three.js was
# the first candidate, but its minified build (~600 KB) alone breaks the
# report's 5 MB budget; this bundle is ~56 KB.
# Run it to update the vendored copy, then commit the two files it writes.
set -euo pipefail
cd "$(dirname "$0")/.."
OGL_VERSION=1.0.11
ESBUILD_VERSION=0.28.2
dest=coordinator/src/report/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '{"private":true}' > "$tmp/package.json"
npm install --prefix "$tmp" --no-audit --no-fund --silent --save-exact \
    "ogl@$OGL_VERSION" "esbuild@$ESBUILD_VERSION"
cat > "$tmp/entry.js" <<'JS'
export { Renderer, Camera, Transform, Mesh, Program, Sphere, Cylinder, Vec3, Quat } from "ogl";
JS
"$tmp/node_modules/.bin/esbuild" "$tmp/entry.js" --bundle --minify --format=iife \
    --global-name=OGL --legal-comments=none --log-level=warning \
    --banner:js="/* OGL $OGL_VERSION (https://www.npmjs.com/package/ogl, Unlicense), bundled by scripts/vendor-report-assets.sh with esbuild $ESBUILD_VERSION */" \
    --outfile="$dest/ogl.min.js"
sed -n '/^## Unlicense$/,$p' "$tmp/node_modules/ogl/README.md" > "$dest/ogl-LICENSE.txt"
if ! grep -q "public domain" "$dest/ogl-LICENSE.txt"; then
    echo "FAIL: no licence section in ogl's README" >&2
    exit 1
fi
echo "vendored ogl@$OGL_VERSION: $(wc -c < "$dest/ogl.min.js") bytes in $dest/ogl.min.js"
