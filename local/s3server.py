"""The embedded S3 (and SQS): MiniStack in a child process, on 127.0.0.1 only.

MiniStack with AUTH=true checks what real S3 checks on presigned requests (signature, expiry,
signed Content-MD5 / checksums / Content-Length, POST policy conditions), which moto's server
does not. It accepts the access key "test" with the secret "test".

The child process cannot outlive the stack: it runs in its own process group, which ``stop``
(and an atexit hook) terminates, and it exits by itself when its stdin pipe from this process
closes, so even a parent killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local.functions import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY
from local.template import LOCAL_REGION

HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 20.0
# Runs MiniStack's entry point, and exits as soon as the pipe from the parent closes.
_LAUNCHER = """
import os, runpy, sys, threading
def _watch_parent():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=_watch_parent, daemon=True).start()
sys.argv = ["ministack"]
runpy.run_path(os.environ["LOCAL_MINISTACK_COMPAT"])
runpy.run_module("ministack", run_name="__main__")
"""


class PortInUseError(RuntimeError):
    """The requested port is taken by another process."""


class S3StartError(RuntimeError):
    """MiniStack did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def ensure_port_free(port: int, what: str) -> None:
    """Raise PortInUseError with a one-line explanation if 127.0.0.1:<port> is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: connections in TIME_WAIT from a previous run must not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(f"{HOST}:{port} ({what}) is already in use; choose another port") from None
            raise


def s3_client(endpoint_url: str, region: str = LOCAL_REGION) -> Any:
    """A boto3 S3 client for the emulator: path-style addressing, SigV4, test credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def emulator_client(service: str, endpoint_url: str, region: str = LOCAL_REGION) -> Any:
    """A boto3 client of another service the emulator serves (SQS, DynamoDB), test credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )


def sqs_client(endpoint_url: str, region: str = LOCAL_REGION) -> Any:
    return emulator_client("sqs", endpoint_url, region)


class EmbeddedS3:
    """MiniStack serving S3 and SQS on 127.0.0.1:<port> (0 picks a free port).

    ``data_dir`` None keeps nothing: objects live in memory and the scratch directory is
    removed on stop. With a ``data_dir`` objects persist there across restarts (S3_PERSIST=1).
    ``request_log``: a file every request is appended to as a JSON line (benchmarks count and
    price them; see local/ministack_compat.py); None logs nothing.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        data_dir: Path | None = None,
        log_level: str = "WARNING",
        request_log: Path | None = None,
    ) -> None:
        self._requested_port = port
        self._request_log = request_log
        self._persist_dir = data_dir
        self._log_level = log_level
        self._scratch: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> EmbeddedS3:
        if self._requested_port:
            ensure_port_free(self._requested_port, "S3_PORT")
        attempts = 1 if self._requested_port else 3  # a free port can be taken before MiniStack binds it
        for attempt in range(attempts):
            self.port = self._requested_port or free_port()
            try:
                self._launch()
                return self
            except S3StartError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        return self  # pragma: no cover - the loop returns or raises

    def _launch(self) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="local-s3-"))
        data_dir = self._persist_dir or self._scratch / "s3"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AUTH": "true",
            "BIND_HOST": HOST,
            "GATEWAY_PORT": str(self.port),
            "SERVICES": "s3,sqs,dynamodb,events",
            # Without these MiniStack also listens on 0.0.0.0:8883 (IoT mTLS) and for SFTP.
            "IOT_MTLS_ENABLED": "0",
            "SFTP_ENABLED": "0",
            "S3_DATA_DIR": str(data_dir),
            "S3_PERSIST": "1" if self._persist_dir else "0",
            # The registry (DynamoDB) must outlive a restart whenever the objects it counts do.
            "PERSIST_STATE": "1" if self._persist_dir else "0",
            # Beside the S3 data, not inside it (a directory there would read as a bucket).
            "STATE_DIR": str(self._persist_dir.with_name("state") if self._persist_dir else self._scratch / "state"),
            "TMPDIR": str(self._scratch),  # its pid file goes here, not to /tmp
            "LOG_LEVEL": self._log_level,
            "PYTHONUNBUFFERED": "1",
            # Fidelity fixes applied inside the MiniStack process (see local/ministack_compat.py).
            "LOCAL_MINISTACK_COMPAT": str(Path(__file__).with_name("ministack_compat.py")),
        }
        if self._request_log is not None:
            environment["LOCAL_REQUEST_LOG"] = str(self._request_log)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=sys.stderr,
            start_new_session=True,
        )
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        health = f"{self.endpoint_url}/_ministack/health"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise S3StartError(f"MiniStack exited while starting on {HOST}:{self.port}")
            try:
                with urllib.request.urlopen(health, timeout=1) as response:  # noqa: S310 - our own http URL
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise S3StartError(f"MiniStack did not become ready on {HOST}:{self.port} within {READY_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        atexit.unregister(self.stop)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def s3_client(self) -> Any:
        return s3_client(self.endpoint_url)

    def sqs_client(self) -> Any:
        return sqs_client(self.endpoint_url)

    def dynamodb_client(self) -> Any:
        return emulator_client("dynamodb", self.endpoint_url)

    def emulator_client(self, service: str) -> Any:
        return emulator_client(service, self.endpoint_url)

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
