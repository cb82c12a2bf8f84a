"""`make dev`'s console: one readable line per request and per validation (JSON logs: --json-logs).

The functions log JSON, as they do in Lambda; by default their output is turned into short lines:
a log record with a verdict (``key`` and ``status``) becomes ``validated <key> <status> <reason>``,
warnings and errors become one line each, routine INFO records and EMF metric documents are left
out, and anything that is not JSON (a traceback, a print) passes through unchanged.
"""

from __future__ import annotations

import json
import sys
import threading
import time

_LOCK = threading.Lock()


def emit(line: str) -> None:
    with _LOCK:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def access_line(method: str, path: str, status: int, milliseconds: float) -> None:
    emit(f"{method:<6} {path} {status} {milliseconds:.0f} ms")


def function_line(function: str, line: str) -> None:
    """One line of a function's output, as readable text (or nothing for routine records)."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        if line.strip():
            emit(f"{function}: {line.rstrip()}")
        return
    if "_aws" in record:  # an EMF metrics document: CloudWatch's business, not the console's
        return
    level = str(record.get("level", "INFO"))
    if "key" in record and "status" in record:
        emit(f"validated {record['key']} {record['status']} {record.get('reason') or ''}".rstrip())
    elif level not in ("DEBUG", "INFO"):
        detail = " ".join(f"{name}={record[name]}" for name in ("key", "code", "error") if record.get(name))
        emit(f"{function} {level} {record.get('message', '')} {detail}".rstrip())
