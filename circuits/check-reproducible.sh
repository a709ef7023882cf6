#!/usr/bin/env bash
# Rebuilds every model from circuits/models.json in a scratch copy and checks that each artifact is
# byte-identical to the committed one (the manifests pin every file by sha256).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/circuits/setup-python.sh"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/circuits" "$scratch/"
"$root/.tools/venv/bin/python" "$scratch/circuits/build.py" > "$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
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
cmp -s "$root/circuits/verifier/Halo2VerifierReusable.sol" "$scratch/circuits/verifier/Halo2VerifierReusable.sol" \
  || { echo "[circuits] the reusable verifier differs" >&2; status=1; }
exit $status
