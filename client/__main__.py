"""``python -m client``: the upload CLI (see client/cli.py and docs/client.md)."""

from __future__ import annotations

import sys

from client.cli import main

if __name__ == "__main__":
    sys.exit(main())
