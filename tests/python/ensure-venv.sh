#!/usr/bin/env bash
# Create (idempotently) the Python 3.12 venv with the real llama-stack 0.7.3 used by tests/python.
#   venv:  ${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}/venv-llama-stack-0.7.3
#   pins:  tests/python/requirements.txt (a stamp file holds its hash; a warm run is instant)
# The last line printed on stdout is the venv's python path. Progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
cache="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
venv="$cache/venv-llama-stack-0.7.3"
stamp="$venv/.llsd-requirements.sha256"
say() { echo "[ensure-venv] $*" >&2; }

find_python312() {
  local p
  if p="$(command -v python3.12 2>/dev/null)" && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    echo "$p"; return 0
  fi
  for p in /root/.pyenv/versions/3.12.*/bin/python3.12 "$HOME"/.pyenv/versions/3.12.*/bin/python3.12; do
    if [ -x "$p" ]; then echo "$p"; return 0; fi
  done
  return 1
}

want="$( (cat "$req"; echo "python3.12") | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "venv up to date: $venv"
  echo "$venv/bin/python"
  exit 0
fi

if ! py312="$(find_python312)"; then
  echo "########################################################################" >&2
  echo "ERROR: python3.12 not found (not on PATH, not in ~/.pyenv/versions/3.12.*)." >&2
  echo "llama-stack 0.7.3 needs Python >= 3.12; the tests/python checks cannot run." >&2
  echo "########################################################################" >&2
  exit 1
fi

say "using $py312 ($("$py312" --version 2>&1))"
say "creating venv $venv"
rm -rf "$venv"
mkdir -p "$cache"
"$py312" -m venv "$venv"
say "installing $(grep -v '^#' "$req" | tr '\n' ' ')(about 2 minutes, ~800 MB)"
start=$(date +%s)
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2
"$venv/bin/python" -c 'import llama_stack.core.stack, llama_stack_api, pytest' >&2
echo "$want" > "$stamp"
say "installed in $(( $(date +%s) - start ))s"
echo "$venv/bin/python"
