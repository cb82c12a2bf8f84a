#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine; safe to run again (it only
# reinstalls when a requirements file changed).
#   .tools/bin/python3.13  the interpreter used for the venvs and `sam build`
#   .venv                  the application, its tests and the local stack
#   .venv-sam              aws-sam-cli, kept apart because it pins its own boto3/cfn-lint
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

python=$(scripts/find-python313.sh)
mkdir -p .tools/bin
ln -sf "$python" .tools/bin/python3.13

stamp() { cat "$@" | sha256sum | cut -c1-16; }

make_venv() {  # dir, stamp, requirement files...
  local dir=$1 want=$2; shift 2
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && "$dir/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  echo "bootstrap: installing $dir" >&2
  # A changed requirements file updates the environment in place (pip skips what is already
  # satisfied); only a missing or broken environment is created anew.
  if ! "$dir/bin/python" -c '' 2>/dev/null; then
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  fi
  local args=()
  for file in "$@"; do args+=(-r "$file"); done
  "$dir/bin/python" -m pip install -qq "${args[@]}"
  echo "$want" > "$dir/.stamp"
}

make_venv .venv "$(stamp requirements-dev.txt layers/core/requirements.txt)" requirements-dev.txt
if [ "${SKIP_SAM:-0}" != 1 ]; then
  make_venv .venv-sam "$(stamp requirements-sam.txt)" requirements-sam.txt
fi
echo "bootstrap: ready ($("$root/.venv/bin/python" --version))" >&2
