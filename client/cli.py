"""``python -m client``: upload (and learn the verdicts), resume, import, list, fetch, delete and abort.

A thin layer over ``client.Uploader``: it reads the configuration (flags, then the environment),
draws the progress bar, prints one line per result, and turns every failure into a one-line
message and an exit code (``client.errors.ExitCode``, listed in docs/client.md).

    export UPLOAD_API_URL=http://127.0.0.1:3000                   # the default
    export UPLOAD_API_TOKEN=$(make -s token SUB=local-user)        # local stack; a real JWT on AWS
    .venv/bin/python -m client put photo.png --concurrency 8 --part-size 16MiB
    .venv/bin/python -m client resume photo.png                    # after Ctrl-C (the parts are kept)
    .venv/bin/python -m client import https://example.com/cat.jpg
    .venv/bin/python -m client put photos/ *.jpg                   # 4 at once, each verdict awaited (10: rejected)
    .venv/bin/python -m client ls                                  # your files and their status
    .venv/bin/python -m client get <fileId> -o copy.png            # verified download
    .venv/bin/python -m client rm <fileId>
    .venv/bin/python -m client ls --unfinished
    .venv/bin/python -m client abort uploads/local-user/<id>/photo.png
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TextIO

import requests

from client.api import normalize_api_url
from client.batch import DEFAULT_FILES_AT_ONCE, BatchInterrupted, FileOutcome, PutOptions, collect, put_files, worst
from client.checksums import CHECKSUMS, Checksum
from client.engine import WhenStopped
from client.errors import (
    AuthError,
    ConfigError,
    ExitCode,
    KeptUpload,
    UploadClientError,
    UploadInterrupted,
    exit_code_for,
)
from client.hints import Invocation, kept_message
from client.parts import parse_size
from client.progress import ProgressBar
from client.put_batch import DEFAULT_BATCH_SIZE
from client.uploader import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, Uploader, UploadResult

DEFAULT_API_URL = "http://127.0.0.1:3000"
API_URL_ENV = "UPLOAD_API_URL"
TOKEN_ENV = "UPLOAD_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
# `make upload` uploads as local-user unless told SUB=...; an upload is only visible to its user.
TOKEN_HINT = (
    f"set {TOKEN_ENV} or pass --token (for the local stack: export {TOKEN_ENV}=$(make -s token SUB=local-user),"
    " with the SUB you upload as; local-user is `make upload`'s)"
)


def build_parser() -> argparse.ArgumentParser:
    # The connection options are accepted before or after the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-url", default=argparse.SUPPRESS, help=f"the API's base URL (${API_URL_ENV}, default {DEFAULT_API_URL})"
    )
    common.add_argument("--token", default=argparse.SUPPRESS, help=f"bearer token (${TOKEN_ENV})")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print results as JSON")
    common.add_argument(
        "--retries",
        type=_non_negative_int,
        default=argparse.SUPPRESS,
        help=f"retries per request after network errors, 5xx and throttling (default {DEFAULT_RETRIES})",
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar and no notices"
    )

    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="Upload files to S3 through the upload API: parallel parts, retries, checksums, resume.",
        parents=[common],
        epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration, 4 authentication, 5 API unreachable,"
        " 6 refused by the API, 7 transfer failed, 8 local file problem, 9 nothing to resume/abort (or no such file),"
        " 10 a file was rejected by the validator, 11 no verdict in time, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    transfer = argparse.ArgumentParser(add_help=False)
    transfer.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"parts in flight per file (default {DEFAULT_CONCURRENCY})",
    )
    transfer.add_argument("--part-size", type=_size, default=None, help="bytes per part, e.g. 16MiB (≥ 5MiB)")
    transfer.add_argument(
        "--keep-parts",
        action="store_true",
        help="when the upload fails, keep the uploaded parts and the state file, to `resume` later"
        " (Ctrl-C keeps them anyway)",
    )
    transfer.add_argument(
        "--abort-on-interrupt",
        action="store_true",
        help="on Ctrl-C abort the upload instead of keeping its parts for `resume`",
    )
    transfer.add_argument("--no-progress", action="store_true", help="no progress bar")

    put = commands.add_parser(
        "put", parents=[common, transfer], help="upload files and folders, and wait for each verdict"
    )
    put.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER", help="files, and folders to upload recursively")
    put.add_argument(
        "--files-at-once",
        type=_positive_int,
        default=DEFAULT_FILES_AT_ONCE,
        help=f"files uploaded (and awaited) together (default {DEFAULT_FILES_AT_ONCE}); at most"
        " files-at-once x (concurrency + 1) requests are in flight",
    )
    put.add_argument(
        "--batch-size",
        type=_non_negative_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"small files signed per API call (default {DEFAULT_BATCH_SIZE}, the API's most); 0: one form"
        " POST per file",
    )
    put.add_argument(
        "--no-wait", action="store_true", help="do not wait for the validator's verdict (exit 0 once stored)"
    )
    put.add_argument("--wait-timeout", type=float, default=120.0, help="seconds to wait for each verdict (default 120)")
    put.add_argument(
        "--checksum",
        choices=[*CHECKSUMS, "none"],
        default="crc32",
        help="per-part checksum signed into each part URL and checked by S3 (default crc32)",
    )
    put.add_argument("--content-type", default=None, help="declared type (default: guessed from the extension)")
    put.add_argument("--name", default=None, help="file name for the key (one file only; default: the file's name)")

    resume = commands.add_parser(
        "resume", parents=[common, transfer], help="continue an interrupted upload, sending only missing parts"
    )
    resume.add_argument("file", help="the file whose upload was interrupted")
    resume.add_argument(
        "--upload-id", default=None, help="the upload to continue (default: state file or GET /uploads)"
    )

    imports = commands.add_parser("import", parents=[common], help="have the API fetch an image from a URL")
    imports.add_argument("url")
    imports.add_argument("--filename", default=None, help="file name for the key (default: from the URL)")

    ls = commands.add_parser("ls", parents=[common], help="list your files and their status, newest first")
    ls.add_argument("--unfinished", action="store_true", help="list your unfinished multipart uploads instead")
    ls.add_argument("--status", choices=["pending", "valid", "rejected"], default=None, help="only files with it")

    status = commands.add_parser("status", parents=[common], help="one file's status and verdict")
    status.add_argument("target", metavar="FILE_ID_OR_KEY")

    get = commands.add_parser("get", parents=[common], help="download a valid file (size and checksum verified)")
    get.add_argument("file_id", metavar="FILE_ID_OR_KEY")
    get.add_argument("-o", "--output", default=None, help="where to write it (default: its name, here)")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")

    rm = commands.add_parser("rm", parents=[common], help="delete a file: every version, and its quota")
    rm.add_argument("file_id", metavar="FILE_ID_OR_KEY")

    abort = commands.add_parser("abort", parents=[common], help="abort an unfinished upload")
    abort.add_argument("target", metavar="KEY_OR_UPLOAD_ID", help="its key, its upload id, or the file being uploaded")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    session: requests.Session | None = None,
) -> int:
    """Run the CLI; returns the exit code (``env``, streams and ``session`` are for tests)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    environment = os.environ if env is None else env
    quiet = bool(getattr(args, "quiet", False))
    invocation = Invocation.current(
        environment, api_url=getattr(args, "api_url", None), token_flag=hasattr(args, "token")
    )
    progress: ProgressBar | None = None
    try:
        api_url, token = resolve_connection(args, environment)
        if args.command == "put":
            return run_put(args, api_url, token, session=session, out=out, err=err, quiet=quiet, invocation=invocation)
        if args.command == "get":
            enabled = False if (quiet or args.no_progress) else None
            progress = ProgressBar(args.file_id, enabled=enabled, stream=err)
            uploader = make_uploader(args, api_url, token, session=session, log=None if quiet else progress.write)
            run_get(args, uploader, out, progress)
            return int(ExitCode.OK)
        if args.command == "resume":
            enabled = False if (quiet or args.no_progress) else None
            progress = ProgressBar(os.path.basename(args.file), enabled=enabled, stream=err)
            notice: Callable[[str], None] | None = None if quiet else progress.write
            uploader = make_uploader(args, api_url, token, session=session, log=notice)
            result = run_transfer(args, uploader, progress)
            progress.close()
            print_result(out, args, result)
        else:
            uploader = make_uploader(args, api_url, token, session=session, log=None if quiet else _printer(err))
            run_other(args, uploader, out, err if not quiet else None)
        return int(ExitCode.OK)
    except KeyboardInterrupt as interrupt:
        _close(progress)
        print("interrupted", file=err)
        _print_kept(err, interrupt.kept if isinstance(interrupt, UploadInterrupted) else None, invocation)
        return int(exit_code_for(interrupt))
    except UploadClientError as error:
        _close(progress)
        print(f"error: {describe(error)}", file=err)
        _print_kept(err, error.kept, invocation)
        return int(exit_code_for(error))
    except Exception as error:  # a bug: say so, with the traceback
        _close(progress)
        traceback.print_exc(file=err)
        print(f"error: unexpected {type(error).__name__}: {error}", file=err)
        return int(ExitCode.INTERNAL)


def resolve_connection(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, str]:
    """The API URL and token: flags first, then UPLOAD_API_URL / UPLOAD_API_TOKEN."""
    api_url = getattr(args, "api_url", None) or env.get(API_URL_ENV) or DEFAULT_API_URL
    token = (getattr(args, "token", None) or env.get(TOKEN_ENV) or "").strip()
    if not token:
        raise ConfigError(f"no API token: {TOKEN_HINT}")
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return normalize_api_url(api_url), token


def make_uploader(
    args: argparse.Namespace,
    api_url: str,
    token: str,
    *,
    session: requests.Session | None,
    log: Callable[[str], None] | None,
) -> Uploader:
    option = str(getattr(args, "checksum", "crc32"))
    checksum: Checksum | None = next((name for name in CHECKSUMS if name == option), None)
    return Uploader(
        api_url,
        token,
        concurrency=getattr(args, "concurrency", DEFAULT_CONCURRENCY),
        files_at_once=getattr(args, "files_at_once", DEFAULT_FILES_AT_ONCE),
        part_size=getattr(args, "part_size", None),
        checksum=checksum,
        retries=getattr(args, "retries", DEFAULT_RETRIES),
        session=session,
        log=log,
    )


def run_put(
    args: argparse.Namespace,
    api_url: str,
    token: str,
    *,
    session: requests.Session | None,
    out: TextIO,
    err: TextIO,
    quiet: bool,
    invocation: Invocation,
) -> int:
    """Every file given (folders recursively), ``--files-at-once`` at a time, one overall bar,
    one result per file as it ends; the worst outcome is the exit code (10 when a file was
    rejected, 130 when Ctrl-C stopped them: every interrupted upload's resume command is printed)."""
    paths = collect(args.files)
    if args.name is not None and len(paths) != 1:
        raise ConfigError("--name names one file; several were given")
    as_json = bool(getattr(args, "json", False))
    label = os.path.basename(str(paths[0])) if len(paths) == 1 else f"{len(paths)} files"
    progress = ProgressBar(label, enabled=False if (quiet or args.no_progress) else None, stream=err)
    uploader = make_uploader(args, api_url, token, session=session, log=None if quiet else progress.write)
    options = PutOptions(
        wait=not args.no_wait,
        wait_timeout=args.wait_timeout,
        content_type=args.content_type,
        filename=args.name,
        when_stopped=WhenStopped(not args.abort_on_interrupt, args.keep_parts),
        batch_size=args.batch_size or None,
    )

    def report(outcome: FileOutcome) -> None:
        if outcome.error is not None:
            which = f"{outcome.path}: " if len(paths) > 1 else ""
            progress.write(f"error: {which}{describe(outcome.error)}")
            _print_kept(err, outcome.error.kept, invocation)
        if as_json:  # one object per file, as soon as it is known
            print(json.dumps(outcome.as_json()), file=out, flush=True)
        elif outcome.error is None:
            print(outcome.line(), file=out, flush=True)

    try:
        outcomes = put_files(
            uploader, paths, options, files_at_once=args.files_at_once, on_progress=progress, on_result=report
        )
    except BatchInterrupted as stopped:
        progress.close()
        print("interrupted", file=err)
        for kept in stopped.kept_uploads:
            _print_kept(err, kept, invocation)
        if stopped.not_started:
            print(f"not started ({len(stopped.not_started)}): {' '.join(stopped.not_started)}", file=err)
        return int(ExitCode.INTERRUPTED)
    finally:
        progress.close()
    return int(worst(outcomes))


def local_name(name: str, fallback: str) -> str:
    """The file's name as a file here: its last segment only, since the name is whatever the
    uploader declared and must never pick a directory (``../``) or a hidden dotfile for us."""
    last = re.split(r"[/\\]", name)[-1].strip().lstrip(".")
    return last if last and "\x00" not in last else fallback


def run_get(args: argparse.Namespace, uploader: Uploader, out: TextIO, progress: ProgressBar) -> None:
    info = uploader.files.status(args.file_id)
    target = args.output or local_name(info.name, info.file_id)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(done, info.size)

    try:
        uploader.files.download(info.file_id, target, on_progress=advance)
    finally:
        progress.close()
    if getattr(args, "json", False):
        _print_json(out, {"fileId": info.file_id, "key": info.key, "path": target, "size": info.size})
    else:
        print(f"downloaded {info.key} to {target} ({info.size} bytes, verified)", file=out)


def run_transfer(args: argparse.Namespace, uploader: Uploader, progress: ProgressBar) -> UploadResult:
    return uploader.resume(
        args.file,
        upload_id=args.upload_id,
        on_progress=progress,
        keep_parts=args.keep_parts,
        abort_on_interrupt=args.abort_on_interrupt,
    )


def run_other(args: argparse.Namespace, uploader: Uploader, out: TextIO, notices: TextIO | None) -> None:
    as_json = bool(getattr(args, "json", False))
    if args.command == "import":
        imported = uploader.import_url(args.url, filename=args.filename)
        if as_json:
            _print_json(
                out,
                {
                    "key": imported.key,
                    "size": imported.size,
                    "contentType": imported.content_type,
                    "etag": imported.etag,
                },
            )
        else:
            print(f"imported {args.url} to {imported.key} ({imported.size} bytes, {imported.content_type})", file=out)
    elif args.command == "ls" and not args.unfinished:
        files = list(uploader.files.list(status=args.status))
        if as_json:
            _print_json(out, {"files": [_camel(asdict(info)) for info in files]})
        else:
            for info in files:
                reason = f" ({info.reason})" if info.reason else ""
                print(f"{info.file_id}\t{info.status}{reason}\t{info.size}\t{info.created_at}\t{info.key}", file=out)
            if not files and notices is not None:
                print("no files", file=notices)
    elif args.command == "status":
        info = uploader.files.status(args.target)
        if as_json:
            _print_json(out, _camel(asdict(info)))
        else:
            reason = f" ({info.reason})" if info.reason else ""
            print(f"{info.status}{reason}\t{info.key}", file=out)
    elif args.command == "rm":
        uploader.files.delete(args.file_id)
        if as_json:
            _print_json(out, {"deleted": args.file_id})
        else:
            print(f"deleted {args.file_id}", file=out)
    elif args.command == "ls":
        pending = uploader.list_unfinished()
        if as_json:
            _print_json(out, {"uploads": [_camel(asdict(upload)) for upload in pending]})
        else:
            for upload in pending:
                print(f"{upload.upload_id}\t{upload.initiated}\t{upload.key}", file=out)
            if not pending and notices is not None:
                print("no unfinished uploads", file=notices)  # a notice, not a line of the listing
    elif args.command == "abort":
        aborted = uploader.abort(args.target)
        if as_json:
            _print_json(out, {"aborted": [_camel(asdict(upload)) for upload in aborted]})
        else:
            for upload in aborted:
                print(f"aborted {upload.key} (upload {upload.upload_id})", file=out)


def print_result(out: TextIO, args: argparse.Namespace, result: UploadResult) -> None:
    if getattr(args, "json", False):
        _print_json(
            out,
            {
                "key": result.key,
                "etag": result.etag,
                "size": result.size,
                "location": result.location,
                "uploadId": result.upload_id,
                "partsSent": result.parts_sent,
                "partsReused": result.parts_reused,
            },
        )
        return
    reused = f", {result.parts_reused} already there" if result.parts_reused else ""
    print(
        f"uploaded {args.file} to {result.key} ({result.size} bytes; {result.parts_sent} parts sent{reused};"
        f" etag {result.etag})",
        file=out,
    )


def describe(error: UploadClientError) -> str:
    """The one-line message for an error, with what to do about it where that is known."""
    if isinstance(error, AuthError):
        if error.status == 401:
            return f"the API refused the token ({error.message}, 401): missing, malformed or expired; {TOKEN_HINT}"
        return f"the token is not allowed to do this ({error.message}, 403)"
    return str(error)


def _printer(stream: TextIO) -> Callable[[str], None]:
    def write(message: str) -> None:
        print(message, file=stream, flush=True)

    return write


def _print_kept(err: TextIO, kept: KeptUpload | None, invocation: Invocation) -> None:
    if kept is not None:
        print(kept_message(kept, invocation), file=err)


def _close(progress: ProgressBar | None) -> None:
    if progress is not None:
        progress.close()


def _print_json(out: TextIO, value: Any) -> None:
    print(json.dumps(value, indent=2), file=out)


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(word.title() for word in rest)

    return {camel(name): value for name, value in fields.items()}


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
