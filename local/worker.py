"""One function's "Lambda container": imports the handler once, then answers invocations.

Run by local.functions as ``python -P local/worker.py LAYER_DIR...`` (no script directory or working
directory on sys.path), so the handler sees what a Lambda sandbox gives it: its code directory
first, then its layers (LAMBDA_TASK_ROOT, then /opt/python), then the runtime's packages (here
the venv, standing in for the runtime and the public Powertools layer). Everything else comes
from the environment, like the real runtime: _HANDLER, LAMBDA_TASK_ROOT, AWS_LAMBDA_*.

Protocol: frames on stdin/stdout, each a 4-byte big-endian length and a UTF-8 JSON document.
The worker first sends {"ready": true|false}, then answers every request:
  {"kind": "invoke", "event": ..., "requestId": "...", "deadlineMs": epoch ms}
      -> {"ok": true, "result": ..., "durationMs": ms}
       | {"ok": false, "error": {"errorType", "errorMessage", ...}, "durationMs": ms}
  {"kind": "describe"} -> {"ok": true, "result": {"environ": {...}, "sysPath": [...]}}
The handler's own prints and logs go to stderr (fd 1 is moved there), as Lambda sends them to
CloudWatch rather than to the caller. Standard library only: it must not import from the repo.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")


def write_frame(stream: BinaryIO, document: Any) -> None:
    payload = json.dumps(document, separators=(",", ":")).encode("utf-8")
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any | None:
    """The next frame's document, or None at end of input (the parent went away)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return json.loads(payload)


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{self.function_name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_document(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def load_handler(layer_dirs: list[str]) -> Callable[[Any, Any], Any]:
    sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"], *layer_dirs]
    # The Python runtime accepts "module.function" and "dir/module.function".
    module_name, _, function_name = os.environ["_HANDLER"].replace("/", ".").rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def serve(requests: BinaryIO, responses: BinaryIO, layer_dirs: list[str]) -> None:
    handler: Callable[[Any, Any], Any] | None = None
    init_error: dict[str, Any] | None = None
    try:
        handler = load_handler(layer_dirs)
    except Exception as error:  # the runtime reports init failures on every invocation
        traceback.print_exc()
        init_error = error_document(error, "Runtime.ImportModuleError")
    write_frame(responses, {"ready": init_error is None, "error": init_error})

    while (request := read_frame(requests)) is not None:
        if request.get("kind") == "describe":
            write_frame(responses, {"ok": True, "result": {"environ": dict(os.environ), "sysPath": sys.path}})
            continue
        if handler is None:
            write_frame(responses, {"ok": False, "error": init_error})
            continue
        context = LambdaContext(str(request["requestId"]), int(request["deadlineMs"]))
        # The handler's own time, as Lambda's REPORT line gives its Duration (what is billed).
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
        except Exception as error:
            duration_ms = (time.perf_counter() - started) * 1000
            print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr)
            traceback.print_exc()
            write_frame(responses, {"ok": False, "error": error_document(error), "durationMs": duration_ms})
            continue
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        duration_ms = (time.perf_counter() - started) * 1000
        try:
            write_frame(responses, {"ok": True, "result": result, "durationMs": duration_ms})
        except (TypeError, ValueError) as error:
            traceback.print_exc()
            marshal_error = error_document(error, "Runtime.MarshalError")
            write_frame(responses, {"ok": False, "error": marshal_error, "durationMs": duration_ms})


def main() -> None:
    # Keep the real stdout for frames and send everything printed to fd 1 to stderr instead.
    responses = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    serve(sys.stdin.buffer, responses, sys.argv[1:])


if __name__ == "__main__":
    main()
