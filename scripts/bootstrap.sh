#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine; safe to run again (it only
# reinstalls when a requirements file changed).
#   .tools/bin/python3.13  the interpreter used for the venvs and `sam build`
#   .venv                  the application, its tests and the local stack
#   .venv-sam              aws-sam-cli, kept apart because it pins its own boto3/cfn-lint
#   local/demo/node_modules  Uppy for the local demo page (npm ci; reinstalled when the lockfile changes)
#   chromium               Debian's, for the browser tests, only with WITH_BROWSER=1 or CI=true
#                          (installed with apt when missing and running as root)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Resolved to the real interpreter: when .tools/bin is already on PATH (make puts it there), the
# search may find our own link, and linking that to itself would break it.
python=$(readlink -f "$(scripts/find-python313.sh)")
mkdir -p .tools/bin
if [ "$python" != "$(readlink -f .tools/bin/python3.13 2>/dev/null)" ]; then
  ln -sfn "$python" .tools/bin/python3.13
fi

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
apt_updated=0
apt_install() {  # packages...; fails without root or apt
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Uppy for the demo page, from the npm registry at the lockfile's versions.
demo=local/demo
demo_stamp=$(stamp "$demo/package-lock.json")
if [ "$(cat "$demo/node_modules/.bootstrap-stamp" 2>/dev/null)" != "$demo_stamp" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || true
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing Uppy for the demo page (npm ci in $demo)" >&2
    (cd "$demo" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$demo_stamp" > "$demo/node_modules/.bootstrap-stamp"
  else
    echo "bootstrap: npm not found, so the demo page has no Uppy: install Node.js and npm, then rerun" >&2
  fi
fi

# The browser tests drive Debian's Chromium; a plain `make dev` does not need it.
if [ "${WITH_BROWSER:-0}" = 1 ] || [ "${CI:-}" = true ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's chromium for the browser tests" >&2
    apt_install chromium fonts-liberation \
      || echo "bootstrap: could not install chromium (needs root and apt); the browser tests will be skipped (under CI they fail)" >&2
  fi
fi
echo "bootstrap: ready ($("$root/.venv/bin/python" --version))" >&2
