"""What the benchmarks share: import paths, the machine's description, medians, the command line, BENCHMARKS.md."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The functions' metrics need a namespace, as the template's Globals give them on AWS; benchmarks
# that call the domain code directly would otherwise fail when Powertools flushes 100 metrics.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Benchmarks")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
MIB = 1024 * 1024
GIB = 1024 * MIB
# What Lambda puts on sys.path for these functions: the layer and each function's own directory.
CODE_PATHS = [
    ROOT / "layers" / "core",
    ROOT / "layers" / "edge",
    ROOT / "functions" / "uploads",
    ROOT / "functions" / "imports",
    ROOT / "functions" / "validator",
    ROOT,
]


def use_code_paths() -> None:
    """Lets `python -m bench.x` import the functions and the core package without PYTHONPATH."""
    for path in reversed(CODE_PATHS):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine_line() -> str:
    """One line: CPU, cores (nproc), memory, OS, Python, date and commit."""
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return (
        f"Machine: {_cpu_model()}, {os.cpu_count()} cores (nproc), {_memory()}, {platform.system()} "
        f"{platform.release()}, {platform.python_implementation()} {platform.python_version()}. "
        f"Date: {today}, commit {_commit()}."
    )


def command_line(module: str, argv: Sequence[str]) -> str:
    return " ".join([".venv/bin/python", "-m", module, *(shlex.quote(arg) for arg in argv)])


def write_section(heading: str, section: str) -> None:
    """Replace the section that starts with `heading` in BENCHMARKS.md (other sections are kept), or append it."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = [*section.rstrip("\n").splitlines(), ""]
        text = "\n".join(lines).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    BENCHMARKS.write_text(text, encoding="utf-8")


def purge(s3: Any, bucket: str, prefix: str = "") -> int:
    """Deletes every version of every object under ``prefix`` (the bucket is versioned, so a plain
    delete only adds a marker, and the embedded S3 keeps every version in memory); returns how
    many objects (latest versions) there were."""
    count = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        entries = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        count += sum(1 for entry in page.get("Versions", []) if entry.get("IsLatest"))
        keys = [{"Key": entry["Key"], "VersionId": entry["VersionId"]} for entry in entries]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
    return count


def size_list(text: str) -> list[int]:
    """An option's comma-separated sizes (`--sizes 1,100,1024`), as numbers."""
    return [int(item) for item in text.split(",") if item.strip()]


def bench_main(
    doc: str | None,
    heading: str,
    options: Callable[[argparse.ArgumentParser], None],
    report: Callable[[argparse.Namespace, list[str]], str],
    argv: list[str] | None = None,
) -> int:
    """A benchmark's command line: its own `options` plus --write; prints the section `report` returns.

    `report` gets the parsed arguments and the command's arguments as typed (for the section's
    Command line); with --write the section replaces `heading`'s in BENCHMARKS.md.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser)
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    section = report(args, list(sys.argv[1:] if argv is None else argv))
    print(section)
    if args.write:
        write_section(heading, section)
    return 0
