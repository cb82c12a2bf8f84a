#!/usr/bin/env bash
# Prints the path of a working python3.13, installing one only where none exists.
# Order: PATH, pyenv, apt (Debian 13 ships it), then a one-time build from Debian's
# python3.13 source package into a cache outside the clone.
set -euo pipefail

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/s3-direct-upload"
BUILT="$CACHE_DIR/python3.13/bin/python3.13"

works() { [ -n "$1" ] && "$1" -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; }

# Every python3.13 on PATH, resolved (a link of ours in .tools/bin resolves to its target).
for candidate in $(which -a python3.13 2>/dev/null || true); do
  candidate=$(readlink -f "$candidate" 2>/dev/null || true)
  if works "$candidate"; then echo "$candidate"; exit 0; fi
done

if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -V -r); do
    candidate="$(pyenv root)/versions/$version/bin/python3.13"
    if works "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi

if works "$BUILT"; then echo "$BUILT"; exit 0; fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >&2 || true
  if apt-cache show python3.13-venv >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.13 python3.13-venv >&2
    if works /usr/bin/python3.13; then echo /usr/bin/python3.13; exit 0; fi
  fi
  # Debian 12 has no binary package: build once from the source package (about five minutes).
  echo "python3.13 not found: building it once into $CACHE_DIR (takes a few minutes)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential dpkg-dev libssl-dev zlib1g-dev \
    libbz2-dev libreadline-dev libsqlite3-dev libffi-dev liblzma-dev uuid-dev >&2
  work=$(mktemp -d)
  (
    cd "$work"
    if ! grep -rqs '^deb-src .*trixie' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb-src http://deb.debian.org/debian trixie main' > /etc/apt/sources.list.d/python313-src.list
      apt-get update -qq
    fi
    apt-get source -qq --download-only python3.13
    dpkg-source -x --no-check python3.13_*.dsc src >/dev/null
    cd src
    ./configure --prefix="$CACHE_DIR/python3.13" --without-ensurepip --enable-optimizations=no >/dev/null
    make -j"$(nproc)" >/dev/null
    make install >/dev/null
    "$CACHE_DIR/python3.13/bin/python3.13" -m ensurepip >/dev/null 2>&1 || true
  ) >&2
  rm -rf "$work"
  if works "$BUILT"; then echo "$BUILT"; exit 0; fi
fi

echo "error: no python3.13 found and none could be installed; install Python 3.13 and put python3.13 on PATH" >&2
exit 1
