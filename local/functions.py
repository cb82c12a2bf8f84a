"""Runs the template's functions like Lambda does: long-lived worker processes, one event at a time.

Each function gets a small pool of workers (spawned on demand, up to ``max_workers``) so parallel
requests do not queue behind each other. A worker's environment is the function's template
environment plus what the Lambda service would add (reserved variables) plus the local overrides
(the embedded S3's endpoint and its test credentials); nothing from the caller's shell leaks in.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from local.template import LOCAL_REGION, FunctionSpec
from local.worker import HEADER

WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")
LOCAL_ACCESS_KEY = "test"
LOCAL_SECRET_KEY = "test"  # noqa: S105 - the emulator's well-known test secret
DEFAULT_MAX_WORKERS = 4
# Importing the handler is Lambda's init phase, which Lambda caps at 10 s.
INIT_TIMEOUT_SECONDS = 10.0

# Receives each line a function writes (its logs), with the function's logical id; None: stderr.
LogSink = Callable[[str, str], None]
# Sees every invocation: (function logical id, event, outcome); must be quick and thread-safe.
InvocationObserver = Callable[[str, Any, "Invocation"], None]


@dataclass(frozen=True, slots=True)
class LocalAws:
    """Where the functions' AWS SDK calls go: an emulator's endpoint with its test credentials."""

    endpoint_url: str
    region: str = LOCAL_REGION
    access_key_id: str = LOCAL_ACCESS_KEY
    secret_access_key: str = LOCAL_SECRET_KEY


@dataclass(slots=True)
class Invocation:
    """The outcome of one invocation: ``result`` when ``ok``, Lambda's error document otherwise."""

    ok: bool
    request_id: str
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    # The handler's own time in the worker (Lambda's billed Duration); None if it never ran.
    duration_ms: float | None = None


class WorkerError(RuntimeError):
    """A worker died or broke the protocol."""


def lambda_environment(
    spec: FunctionSpec,
    aws: LocalAws,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The worker's complete environment.

    ``overrides`` works like ``sam local invoke --env-vars``: it replaces values of variables
    the template declares and ignores the rest (see ``applicable_overrides``).
    """
    environment = dict(spec.environment)
    environment.update(applicable_overrides(spec, overrides or {}))
    environment.update(
        {
            # What the Lambda service sets in every Python sandbox.
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_REGION": aws.region,
            "AWS_DEFAULT_REGION": aws.region,
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            # Local stand-ins: the emulator and its credentials, never the caller's AWS account.
            "AWS_ACCESS_KEY_ID": aws.access_key_id,
            "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
            "AWS_EC2_METADATA_DISABLED": "true",
            "S3_ENDPOINT_URL": aws.endpoint_url,
            "AWS_ENDPOINT_URL_S3": aws.endpoint_url,
            "AWS_ENDPOINT_URL_SQS": aws.endpoint_url,
            "AWS_ENDPOINT_URL_DYNAMODB": aws.endpoint_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": aws.endpoint_url,
            # No X-Ray daemon locally; metrics are printed as EMF to the log, as in Lambda.
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Powertools warns on every invocation that records no metric; that is not news locally.
            "PYTHONWARNINGS": "ignore:No application metrics to publish",
        }
    )
    environment.setdefault("POWERTOOLS_METRICS_NAMESPACE", "local")
    return environment


def applicable_overrides(spec: FunctionSpec, overrides: Mapping[str, Any]) -> dict[str, str]:
    """An ``--env-vars`` document applied the way SAM does.

    Either a flat {"VAR": "value"} or SAM's {"Parameters": {...}, "<LogicalId>": {...}}; the
    function's own section wins over "Parameters", and only variables the template declares for
    this function are replaced.
    """
    if any(isinstance(value, dict) for value in overrides.values()):
        merged = {**(overrides.get("Parameters") or {}), **(overrides.get(spec.logical_id) or {})}
    else:
        merged = dict(overrides)
    return {key: _env_value(value) for key, value in merged.items() if key in spec.environment}


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def code_stamp(spec: FunctionSpec) -> float:
    """The newest modification time of the function's and its layers' Python files.

    Workers started before a change are replaced, so edits show up on the next request, as with
    ``sam local start-api``. The trees are small; walking them costs well under a millisecond.
    """
    newest = 0.0
    for root in (spec.code_uri, *spec.layer_dirs):
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [name for name in subdirectories if not name.startswith((".", "__pycache__"))]
            for name in files:
                if name.endswith(".py"):
                    try:
                        newest = max(newest, os.stat(os.path.join(directory, name)).st_mtime)
                    except FileNotFoundError:
                        continue
    return newest


def _read_exact(stream: IO[bytes], size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    descriptor = stream.fileno()
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([descriptor], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(descriptor, min(remaining, 1 << 20))
        if not chunk:
            raise WorkerError("the worker exited")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class WorkerProcess:
    """One worker subprocess: the handler imported once, invocations answered in order."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], log_sink: LogSink | None = None) -> None:
        self.spec = spec
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(WORKER_SCRIPT), *(str(path) for path in spec.layer_dirs)],
            env=dict(environment),
            cwd=spec.code_uri,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if log_sink is None else subprocess.PIPE,
            # Its own session: Ctrl-C in a terminal reaches the stack, which then stops workers.
            start_new_session=True,
        )
        self.code_stamp = code_stamp(spec)
        if log_sink is not None:
            threading.Thread(target=self._forward_logs, args=(log_sink,), daemon=True).start()
        try:
            ready = self._receive(time.monotonic() + INIT_TIMEOUT_SECONDS)
        except (TimeoutError, WorkerError):
            self.stop()
            raise WorkerError(f"{spec.logical_id}: the worker did not start") from None
        # Lambda retries a failed init on the next invocation, so such a worker is not reused.
        self.init_failed = not ready.get("ready")

    @property
    def reusable(self) -> bool:
        return self._process.poll() is None and not self.init_failed and self.code_stamp == code_stamp(self.spec)

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        request_id = request_id or str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000) + self.spec.timeout * 1000
        try:
            self._send({"kind": "invoke", "event": event, "requestId": request_id, "deadlineMs": deadline_ms})
            # A little grace over the function's Timeout for the frame to arrive.
            response = self._receive(time.monotonic() + self.spec.timeout + 1.0)
        except TimeoutError:
            print(
                f"{self.spec.logical_id} {request_id} Task timed out after {self.spec.timeout}.00 seconds",
                file=sys.stderr,
            )
            self.stop(graceful=False)  # Lambda discards a sandbox that timed out
            return Invocation(False, request_id, error={"errorType": "Sandbox.Timedout", "errorMessage": "timeout"})
        except WorkerError as error:
            self.stop()
            return Invocation(False, request_id, error={"errorType": "Runtime.ExitError", "errorMessage": str(error)})
        duration = response.get("durationMs")
        duration_ms = float(duration) if isinstance(duration, int | float) else None
        if response.get("ok"):
            return Invocation(True, request_id, result=response.get("result"), duration_ms=duration_ms)
        return Invocation(False, request_id, error=response.get("error") or {}, duration_ms=duration_ms)

    def _forward_logs(self, log_sink: LogSink) -> None:
        assert self._process.stderr is not None
        with self._process.stderr:
            for raw in self._process.stderr:
                log_sink(self.spec.logical_id, raw.decode("utf-8", "replace"))

    def describe(self) -> dict[str, Any]:
        """The worker's os.environ and sys.path, for tests and debugging."""
        self._send({"kind": "describe"})
        result: dict[str, Any] = self._receive(time.monotonic() + 5.0)["result"]
        return result

    def stop(self, *, graceful: bool = True) -> None:
        """End the worker: EOF on its input lets it exit; a stuck one is killed with its group."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=1.0 if graceful else 0.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def _send(self, document: Any) -> None:
        payload = json.dumps(document, separators=(",", ":")).encode("utf-8")
        stdin = self._process.stdin
        if stdin is None:  # pragma: no cover - always a pipe
            raise WorkerError("no pipe to the worker")
        try:
            stdin.write(HEADER.pack(len(payload)) + payload)
            stdin.flush()
        except (BrokenPipeError, ValueError):
            raise WorkerError("the worker exited") from None

    def _receive(self, deadline: float | None) -> dict[str, Any]:
        stdout = self._process.stdout
        if stdout is None:  # pragma: no cover - always a pipe
            raise WorkerError("no pipe from the worker")
        (length,) = HEADER.unpack(_read_exact(stdout, HEADER.size, deadline))
        document: dict[str, Any] = json.loads(_read_exact(stdout, length, deadline))
        return document


class FunctionPool:
    """Up to ``max_workers`` warm workers of one function, created when the load needs them."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        max_workers: int = DEFAULT_MAX_WORKERS,
        log_sink: LogSink | None = None,
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self._log_sink = log_sink
        self._max_workers = max_workers
        self._idle: list[WorkerProcess] = []
        self._count = 0
        self._closed = False
        self._condition = threading.Condition()

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        worker = self._acquire()
        try:
            return worker.invoke(event, request_id)
        finally:
            self._release(worker)

    def describe(self) -> dict[str, Any]:
        worker = self._acquire()
        try:
            return worker.describe()
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.stop()

    def _acquire(self) -> WorkerProcess:
        stale: list[WorkerProcess] = []
        try:
            return self._acquire_or_spawn(stale)
        finally:
            for worker in stale:  # code changed since it started: a fresh import picks it up
                worker.stop()

    def _acquire_or_spawn(self, stale: list[WorkerProcess]) -> WorkerProcess:
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerError(f"{self.spec.logical_id} is shut down")
                while self._idle:
                    idle = self._idle.pop()
                    if idle.reusable:
                        return idle
                    stale.append(idle)
                    self._count -= 1
                if self._count < self._max_workers:
                    self._count += 1
                    break
                self._condition.wait()
        try:
            return WorkerProcess(self.spec, self.environment, self._log_sink)
        except BaseException:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise

    def _release(self, worker: WorkerProcess) -> None:
        with self._condition:
            if not self._closed and worker.reusable:
                self._idle.append(worker)
                self._condition.notify()
                return
            self._count -= 1
            self._condition.notify()
        worker.stop()


class Functions:
    """Every function of the template, invocable by logical id.

    ``sdk_app_ids`` tags each function's AWS SDK calls with its logical id (User-Agent
    ``app/<id>``), for request logs that attribute calls to functions.
    """

    def __init__(
        self,
        specs: list[FunctionSpec],
        aws: LocalAws,
        env_overrides: Mapping[str, Any] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        log_sink: LogSink | None = None,
        *,
        sdk_app_ids: bool = False,
    ) -> None:
        self.specs = {spec.logical_id: spec for spec in specs}
        # Called after every invocation from the invoking thread (benchmarks count and time them).
        self.observer: InvocationObserver | None = None
        self._pools = {}
        for spec in specs:
            environment = lambda_environment(spec, aws, env_overrides)
            if sdk_app_ids:
                # botocore adds "app/<id>" to the User-Agent of every AWS call the function makes,
                # so the emulator's request log can tell whose call it was (benchmarks only).
                environment["AWS_SDK_UA_APP_ID"] = spec.logical_id
            self._pools[spec.logical_id] = FunctionPool(spec, environment, max_workers, log_sink)

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> Invocation:
        invocation = self.pool(logical_id).invoke(event, request_id)
        if self.observer is not None:
            self.observer(logical_id, event, invocation)
        return invocation

    def pool(self, logical_id: str) -> FunctionPool:
        try:
            return self._pools[logical_id]
        except KeyError:
            raise KeyError(f"no function {logical_id!r}") from None

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
