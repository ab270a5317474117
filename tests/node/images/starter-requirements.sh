#!/usr/bin/env bash
# Regenerates starter-requirements.txt, the exact pins of the starter image's /opt/llama venv:
#   1. the config.yaml the operator generates for every file of deploy/samples
#      (`llama-stack-operator generate`, as tests/python/test_samples.py does);
#   2. `llama stack list-deps` of each (llama-stack of the tests/python venv), merged, without
#      torch/torchvision/torchao/sentence-transformers (CUDA wheels by default, and their index,
#      download.pytorch.org, is unreachable; no generated config uses them) and without the
#      modules of external providers (installed in the pod from their own images);
#   3. llama-stack==<the starter's llamaStackVersion in configs/distributions.json> + "mcp<2" +
#      those, resolved by pip in a Debian trixie chroot (the image's Python), then `pip freeze`.
# Run it after changing deploy/samples, the operator's config generation, or the pinned
# llama-stack version; review the diff; commit the file. build.sh never resolves anything.
#
# Usage: starter-requirements.sh     (root; ~4 min). The operator binary is $LLSD_OPERATOR_BIN,
#        else ~/.cache/llama-stack-operator/target/debug/llama-stack-operator (`make build`).
set -euo pipefail

# shellcheck source=build.sh
source "$(dirname "${BASH_SOURCE[0]}")/build.sh"

out_file="$LLSD_IMAGES_SRC/starter-requirements.txt"
op="${LLSD_OPERATOR_BIN:-$LLSD_CACHE_DIR/target/debug/llama-stack-operator}"
[[ -x "$op" ]] || die "operator binary $op not found: run \`make build\` or set LLSD_OPERATOR_BIN"
_need_root
_ensure_tools

version="$(python3 -c 'import json,sys; print({d["name"]: d for d in json.load(open(sys.argv[1]))["distributions"]}["starter"]["llamaStackVersion"])' \
  "$LLSD_REPO_ROOT/configs/distributions.json")"
py="$("$LLSD_REPO_ROOT/tests/python/ensure-venv.sh" | tail -n 1)"
llama="$(dirname "$py")/llama"
"$py" -c "import llama_stack, importlib.metadata as m; v = m.version('llama-stack'); assert v == '$version', v" ||
  die "the tests/python venv's llama-stack is not $version (the starter's version): list-deps would differ"

_lock_builds
_clean_stale_work
tmp="$(_work_dir)/requirements"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$(_work_dir)"' EXIT

log "generating the configs of deploy/samples with $op"
mapfile -t configs < <("$py" "$LLSD_IMAGES_SRC/starter/sample_configs.py" "$op" "$tmp/configs")

# list-deps prints the plain requirements on one line, then one line per special install
# (`... --extra-index-url URL`, `... --no-deps`): those must be torch & co. only.
excluded_re='^(torch|torchvision|torchao|sentence-transformers)([<>=!~\[ ]|$)'
: >"$tmp/reqs"
for cfg in "${configs[@]}"; do
  log "llama stack list-deps $(basename "$cfg")"
  "$llama" stack list-deps "$cfg" 2>/dev/null >"$tmp/deps" || die "list-deps failed for $cfg"
  # External providers (`module:`) are listed too, but the operator's init container installs
  # them from their own image: not the starter's business.
  modules="$("$py" -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for ps in (c.get("providers") or {}).values():
    for p in ps or []:
        if p.get("module"):
            print(p["module"].split("==")[0])' "$cfg")"
  while read -r line; do
    [[ -n "$line" ]] || continue
    if [[ "$line" == *--* ]]; then
      for word in ${line%% --*}; do
        [[ "$word" =~ $excluded_re ]] || die "list-deps wants '$line' for $cfg: not torch & co.; decide how to install it"
      done
      continue
    fi
    # The plain line: split into requirements, one a line.
    for word in $line; do
      [[ ! "$word" =~ $excluded_re ]] || continue
      if grep -qxF "$word" <<<"$modules"; then
        log "  leaving out $word: the external provider module of $(basename "$cfg")"
        continue
      fi
      echo "$word" >>"$tmp/reqs"
    done
  done <"$tmp/deps"
done
LC_ALL=C sort -u "$tmp/reqs" -o "$tmp/reqs"
log "$(wc -l <"$tmp/reqs") requirements from list-deps; resolving with pip in a $DEBIAN_SUITE chroot (~3 min)…"

base="$(_ensure_base)"
mkdir -p "$tmp/in"
cp "$tmp/reqs" "$tmp/in/reqs.txt"
# The resolution runs over the base in a throwaway upper dir; the freeze comes back on stdout.
# shellcheck disable=SC2016  # run by the chroot's sh
LLSD_IMAGES_SRC="$tmp/in" _in_overlay "$base" "$tmp/upper" '
  python3 -m venv /tmp/v
  /tmp/v/bin/pip install --prefer-binary "llama-stack==$1" "mcp<2" -r /run/in/reqs.txt >&2
  /tmp/v/bin/pip check >&2
  /tmp/v/bin/pip freeze
' "$version" >"$tmp/freeze"
cp "$tmp/freeze" "$LLSD_IMAGES_DIR/starter-requirements.last-freeze"  # for a look when a check fails
if grep -Eiq '^(torch|sentence-transformers|nvidia-)' "$tmp/freeze"; then
  die "the resolution pulled in torch/CUDA packages: $(grep -Ei '^(torch|sentence-transformers|nvidia-)' "$tmp/freeze" | tr '\n' ' ')"
fi
grep -Eiq "^llama[-_.]stack==$version\$" "$tmp/freeze" || die "the freeze lacks llama-stack==$version"
grep -Ev '^[A-Za-z0-9_.-]+(\[[^]]*\])?==[^ ]+$' "$tmp/freeze" &&
  die "pip freeze printed lines that are not NAME==VERSION (above)"

{
  echo "# Exact pins of the starter image's venv (/opt/llama), for tests/node/images/build.sh."
  echo "# GENERATED by tests/node/images/starter-requirements.sh on $(date -u +%Y-%m-%d); do not edit."
  echo "# How: the operator generated config.yaml for every file of deploy/samples; \`llama stack"
  echo "# list-deps\` (llama-stack $version) of each, merged, minus torch/torchvision/torchao/"
  echo "# sentence-transformers; plus llama-stack==$version and \"mcp<2\"; resolved with pip"
  echo "# --prefer-binary with Debian $DEBIAN_SUITE's $(chroot "$base" python3 -c 'import sys; print("Python %d.%d" % sys.version_info[:2])'), then pip freeze."
  echo "# list-deps asked for:"
  { tr '\n' ' ' <"$tmp/reqs"; echo; } | fold -s -w 96 | sed 's/^/#   /; s/ *$//'
  LC_ALL=C sort -f "$tmp/freeze"
} >"$out_file"
log "wrote $out_file ($(grep -c '==' "$out_file") pins)"
