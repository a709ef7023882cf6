#!/usr/bin/env bash
# Prepare the project-local Python venv that rebuilding circuits needs (native ezkl 21.0.0).
# Idempotent: the venv under .tools/venv is reused while circuits/requirements.txt is unchanged.
# Only `npm run circuits:build` needs it; tests and the demo use the committed artifacts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/venv"
req="$root/circuits/requirements.txt"
stamp="$venv/.sertn-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
# One installer at a time (tests may call this from several processes); re-check once we hold the lock.
mkdir -p "$root/.tools"
exec 9>"$root/.tools/.venv.lock"
flock 9
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "error: $py not found. Install Python 3.9-3.12 (with venv) or set PYTHON=/path/to/python3." >&2
  exit 1
fi
echo "[setup-python] creating $venv with $(tr '\n' ' ' < "$req")" >&2
# Two tries: a venv's ensurepip step has been seen to fail once when another install ran beside it.
for attempt in 1 2; do
  rm -rf "$venv"
  if "$py" -m venv "$venv" && "$venv/bin/pip" install --disable-pip-version-check -q -r "$req"; then
    break
  fi
  if [[ $attempt == 2 ]]; then
    echo "error: could not create $venv with $(tr '\n' ' ' < "$req") from PyPI; see the messages above" >&2
    exit 1
  fi
  echo "[setup-python] retrying once" >&2
  sleep 2
done
echo "$want" > "$stamp"
echo "[setup-python] ready: $("$venv/bin/python" -c 'import ezkl,onnx;print("ezkl",ezkl.__version__,"onnx",onnx.__version__)')" >&2
