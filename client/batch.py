"""``put`` of several files and folders: one overall progress bar, a result per file (key and
verdict), and the worst outcome as the exit code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from client.errors import ExitCode, UploadClientError, exit_code_for
from client.files import FileInfo
from client.uploader import Uploader, UploadResult


@dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    result: UploadResult | None  # None when the upload failed
    verdict: str  # valid, rejected, pending (not waited for, or no verdict in time), error
    reason: str | None
    exit_code: ExitCode
    error: UploadClientError | None = None

    @property
    def key(self) -> str | None:
        return self.result.key if self.result else None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"path": self.path}
        if self.result is not None:
            body.update(
                key=self.result.key,
                etag=self.result.etag,
                size=self.result.size,
                location=self.result.location,
                uploadId=self.result.upload_id,
                partsSent=self.result.parts_sent,
                partsReused=self.result.parts_reused,
            )
        body.update(verdict=self.verdict, reason=self.reason, exitCode=int(self.exit_code))
        return body

    def line(self) -> str:
        if self.result is None:
            return f"failed {self.path}: {self.reason}"
        result = self.result
        reused = f", {result.parts_reused} already there" if result.parts_reused else ""
        verdict = {
            "valid": "valid",
            "rejected": f"REJECTED ({self.reason})",
            "pending": "pending" + (f" ({self.reason})" if self.reason else ""),
        }.get(self.verdict, self.verdict)
        return (
            f"uploaded {self.path} to {result.key} ({result.size} bytes; {result.parts_sent} parts sent{reused};"
            f" etag {result.etag}): {verdict}"
        )


def collect(targets: Iterable[str]) -> list[Path]:
    """The files named, and every file under the folders named (sorted, hidden ones skipped)."""
    found: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found += sorted(
                item
                for item in path.rglob("*")
                if item.is_file() and not any(part.startswith(".") for part in item.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def worst(outcomes: Iterable[FileOutcome]) -> ExitCode:
    return max((outcome.exit_code for outcome in outcomes), default=ExitCode.OK)


def put_all(
    uploader: Uploader,
    paths: list[Path],
    *,
    wait: bool,
    wait_timeout: float,
    on_progress: Callable[[int, int], None] | None,
    on_result: Callable[[FileOutcome], None],
    content_type: str | None = None,
    filename: str | None = None,
    keep_parts: bool = False,
    abort_on_interrupt: bool = False,
) -> list[FileOutcome]:
    """Upload each file (its parts in parallel), then wait for its verdict; one failure does
    not stop the others (Ctrl-C does)."""
    sizes = [_size(path) for path in paths]
    total = sum(size for size in sizes if size is not None)
    done_before = 0
    outcomes = []
    for path, size in zip(paths, sizes, strict=True):
        offset = done_before

        def progress(done: int, _total: int, offset: int = offset) -> None:
            if on_progress is not None:
                on_progress(offset + done, total)

        outcome = _put_one(
            uploader,
            path,
            wait=wait,
            wait_timeout=wait_timeout,
            on_progress=progress,
            content_type=content_type,
            filename=filename,
            keep_parts=keep_parts,
            abort_on_interrupt=abort_on_interrupt,
        )
        done_before += size or 0
        outcomes.append(outcome)
        on_result(outcome)
    return outcomes


def _put_one(
    uploader: Uploader,
    path: Path,
    *,
    wait: bool,
    wait_timeout: float,
    on_progress: Callable[[int, int], None],
    content_type: str | None,
    filename: str | None,
    keep_parts: bool,
    abort_on_interrupt: bool,
) -> FileOutcome:
    try:
        result = uploader.upload(
            path,
            content_type=content_type,
            filename=filename,
            on_progress=on_progress,
            keep_parts=keep_parts,
            abort_on_interrupt=abort_on_interrupt,
        )
    except UploadClientError as error:
        return FileOutcome(str(path), None, "error", str(error), exit_code_for(error), error)
    if not wait:
        return FileOutcome(str(path), result, "pending", None, ExitCode.OK)
    try:
        info: FileInfo | None = uploader.files.wait(result.key, timeout=wait_timeout)
    except UploadClientError as error:
        return FileOutcome(str(path), result, "error", str(error), exit_code_for(error), error)
    if info is None:
        return FileOutcome(str(path), result, "pending", "no verdict in time", ExitCode.NO_VERDICT)
    code = ExitCode.OK if info.status == "valid" else ExitCode.REJECTED
    return FileOutcome(str(path), result, info.status, info.reason, code)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


__all__ = ["FileOutcome", "collect", "put_all", "worst"]
