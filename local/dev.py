"""``make dev``: the whole API on this machine, from template.yaml, until Ctrl-C.

    python -m local.dev                 # S3 on S3_PORT (default 4566), API on API_PORT (default 3000)
    python -m local.dev --persist       # keep the bucket's objects in .local-data/ across restarts
    python -m local.dev --token bob     # print a local token for user "bob" and exit

Prints the URLs, a ready-to-use token and copy-pasteable commands (a multipart upload with curl,
a presigned POST form upload), logs one line per API request and the functions' own logs to
stderr, and shuts everything down on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError

from local.demo_site import uppy_installed
from local.s3server import PortInUseError, S3StartError
from local.stack import LocalStack, port_from_env, token_for
from local.template import REPO_ROOT, TemplateError, load_template

DEFAULT_S3_PORT = 4566
DEFAULT_API_PORT = 3000
DEFAULT_USER = "local-user"
PERSIST_DIR = REPO_ROOT / ".local-data" / "s3"

EXAMPLES = Path(__file__).with_name("dev-examples.sh")


def examples(stack: LocalStack, token: str) -> str:
    """The copy-pasteable commands of dev-examples.sh, filled in for the running stack."""
    text = EXAMPLES.read_text(encoding="utf-8")
    for placeholder, value in {
        "@API@": stack.api_url,
        "@TOKEN@": token,
        "@S3@": stack.s3_endpoint,
        "@BUCKET@": stack.bucket,
        "@PYTHON@": sys.executable,
        "@ROOT@": str(REPO_ROOT),
    }.items():
        text = text.replace(placeholder, value)
    return text


def banner(stack: LocalStack, token: str) -> str:
    routes = "\n".join(
        f"  {route.method:<6} {route.path}{'' if route.authorized else '   (no token needed)'}"
        for route in stack.template.routes(stack.parameter_overrides)
    )
    demo_note = "(Uppy; local only)" if uppy_installed() else "(Uppy is not installed: run scripts/bootstrap.sh)"
    return f"""
Local stack is running (127.0.0.1 only). Ctrl-C stops it.

  API         {stack.api_url}
  S3          {stack.s3_endpoint}   (access key "test", secret "test", region {stack.region}, path-style)
  bucket      {stack.bucket}
  demo page   {stack.demo_url}   {demo_note}

Routes (from template.yaml):
{routes}

Token for user "{DEFAULT_USER}" (local only: signatures are not checked; valid 24 h):
  {token}
Another user's token:  make token SUB=<user>   (in {REPO_ROOT})

{examples(stack, token)}"""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(persist: bool) -> int:
    stack = LocalStack(
        s3_port=port_from_env("S3_PORT", DEFAULT_S3_PORT),
        api_port=port_from_env("API_PORT", DEFAULT_API_PORT),
        data_dir=PERSIST_DIR if persist else None,
        access_log=True,
    )
    if persist:
        PERSIST_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.start()
        print(banner(stack, stack.token_for(DEFAULT_USER)), flush=True)
        threading.Event().wait()  # until Ctrl-C / SIGTERM
    except KeyboardInterrupt:
        print("\nstopping the local stack...", file=sys.stderr)
    finally:
        stack.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.dev", description="Run the API locally (make dev).")
    parser.add_argument("--persist", action="store_true", help=f"keep S3 data in {PERSIST_DIR.relative_to(REPO_ROOT)}")
    parser.add_argument("--token", metavar="USER", help="print a local token for USER and exit")
    args = parser.parse_args(argv)
    try:
        if args.token:
            print(token_for(load_template(), args.token))
            return 0
        return run(args.persist)
    except (PortInUseError, S3StartError, TemplateError, ValueError) as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"make dev: setting up the embedded S3 failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
