"""``make dev``: the whole API on this machine, from template.yaml, until Ctrl-C.

    python -m local.dev                 # S3 on S3_PORT (default 4566), API on API_PORT (default 3000)
    python -m local.dev --persist       # keep the bucket's objects in .local-data/ across restarts
    python -m local.dev --parameter-overrides MaxConcurrentUploads=3   # like sam deploy's
    python -m local.dev --json-logs     # the functions' JSON logs instead of one line per event
    python -m local.dev --token bob     # print a local token for user "bob" and exit

Prints the URLs, a ready-to-use token and the README's curl walk-through, then one line per API
request and per validation, and shuts everything down on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError

from local import console
from local.demo_site import uppy_installed
from local.s3server import PortInUseError, S3StartError
from local.stack import LocalStack, port_from_env, token_for
from local.template import REPO_ROOT, TemplateError, load_template

DEFAULT_S3_PORT = 4566
DEFAULT_API_PORT = 3000
DEFAULT_USER = "local-user"
PERSIST_DIR = REPO_ROOT / ".local-data" / "s3"
WALKTHROUGH = Path(__file__).with_name("walkthrough.sh")


def walkthrough(api: str, s3: str, bucket: str) -> str:
    """The curl walk-through (the README's block) for a stack at these addresses."""
    text = WALKTHROUGH.read_text(encoding="utf-8")
    return text.replace("@API@", api).replace("@S3@", s3).replace("@BUCKET@", bucket)


def default_walkthrough() -> str:
    """The walk-through for `make dev` with default ports and parameters, as the README shows it."""
    bucket = load_template().bucket_name()
    return walkthrough(f"http://127.0.0.1:{DEFAULT_API_PORT}", f"http://127.0.0.1:{DEFAULT_S3_PORT}", bucket)


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``Name=Value`` items (each may hold several, space-separated), as sam's --parameter-overrides."""
    overrides: dict[str, str] = {}
    for item in (word for entry in items for word in entry.split()):
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise ValueError(f"--parameter-overrides takes Name=Value, got {item!r}")
        overrides[name] = value
    return overrides


def banner(stack: LocalStack, token: str) -> str:
    routes = "\n".join(
        f"  {route.method:<6} {route.path}{'' if route.authorized else '   (no token needed)'}"
        for route in stack.template.routes(stack.parameter_overrides)
    )
    overrides = " ".join(f"{name}={value}" for name, value in stack.parameter_overrides.items()) or "none"
    demo_note = "(Uppy; local only)" if uppy_installed() else "(Uppy is not installed: run scripts/bootstrap.sh)"
    return f"""
Local stack is running (127.0.0.1 only). Ctrl-C stops it.

  API         {stack.api_url}
  S3          {stack.s3_endpoint}   (access key "test", secret "test", region {stack.region}, path-style)
  bucket      {stack.bucket}
  demo page   {stack.demo_url}   {demo_note}
  parameters  {overrides}

Routes (from template.yaml):
{routes}

Token for user "{DEFAULT_USER}" (RS256, signed with the local key in .local-data/; valid 24 h):
  {token}
Another user's token:  make token SUB=<user>   (in {REPO_ROOT})

# ---- the README's walk-through: a form upload and a 20 MB multipart upload (paste into bash in {REPO_ROOT})
{walkthrough(stack.api_url, stack.s3_endpoint, stack.bucket)}"""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(persist: bool, parameter_overrides: Mapping[str, str], json_logs: bool) -> int:
    stack = LocalStack(
        s3_port=port_from_env("S3_PORT", DEFAULT_S3_PORT),
        api_port=port_from_env("API_PORT", DEFAULT_API_PORT),
        parameter_overrides=parameter_overrides,
        data_dir=PERSIST_DIR if persist else None,
        access_log=console.access_line,
        log_sink=None if json_logs else console.function_line,
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
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE", help="template Parameters, as sam's"
    )
    parser.add_argument("--json-logs", action="store_true", help="print the functions' JSON logs as they are")
    parser.add_argument("--token", metavar="USER", help="print a local token for USER and exit")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.parameter_overrides)
        if args.token:
            template = load_template()
            template.check_overrides(overrides)
            print(token_for(template, args.token, parameter_overrides=overrides))
            return 0
        return run(args.persist, overrides, args.json_logs)
    except (PortInUseError, S3StartError, TemplateError, ValueError) as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"make dev: setting up the embedded S3 failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
