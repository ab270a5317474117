#!/usr/bin/env bash
# Run the real-llama-stack checks in tests/python: builds/reuses the venv, then pytest -q.
# Exit code is pytest's. LLSD_OPERATOR_BIN (the operator CLI, for test_server_start.py) is passed
# through; extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/ensure-venv.sh" | tail -n 1)"
bin="${LLSD_OPERATOR_BIN:-}"
# keep a relative path working after the cd below
if [ -n "$bin" ] && [[ "$bin" == */* ]] && [[ "$bin" != /* ]]; then bin="$PWD/$bin"; fi
export LLSD_OPERATOR_BIN="$bin"
cd "$here/../.."
set +e
"$py" -m pytest -q -p no:cacheprovider "$here" "$@"
rc=$?
exit $rc
