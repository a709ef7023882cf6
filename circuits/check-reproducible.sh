#!/usr/bin/env bash
# Rebuilds every model of circuits/models.json (sources from circuits/sources/make.py, then
# `sertn model build`) in a scratch copy of circuits/ and checks that each manifest, which pins
# every artifact by sha256, is byte-identical to the committed one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/circuits" "$scratch/"
# The committed SRS files stay (a rebuild reuses them); everything else is rebuilt from the sources.
( cd "$root" && npx tsx circuits/pipeline/build-all.ts --root "$scratch/circuits" --no-wasm ) > "$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
status=0
for manifest in "$root"/circuits/*/manifest.json; do
  model="$(basename "$(dirname "$manifest")")"
  if cmp -s "$manifest" "$scratch/circuits/$model/manifest.json"; then
    echo "[circuits] $model: rebuilt byte-identical"
  else
    echo "[circuits] $model: the rebuild differs from the committed artifacts:" >&2
    diff <(python3 -m json.tool "$manifest") <(python3 -m json.tool "$scratch/circuits/$model/manifest.json") >&2 || true
    status=1
  fi
done
for src in "$root"/circuits/sources/*/network.onnx; do
  model="$(basename "$(dirname "$src")")"
  cmp -s "$src" "$scratch/circuits/sources/$model/network.onnx" || { echo "[circuits] sources/$model/network.onnx: make.py writes other bytes" >&2; status=1; }
done
exit $status
