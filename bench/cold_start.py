"""Cold start: how long each function's handler module takes to import in a fresh interpreter.

For each function of template.yaml, a new Python process gets the function's environment (the
template's variables plus what Lambda sets) and Lambda's import path (the function's code
directory, then the layer), and times `import <handler module>`: Lambda's init phase, minus the
runtime's own start. Next to them, a handler that imports only boto3. Median of N processes.
One more process per function runs with `-X importtime` to list what the handler imports.

    .venv/bin/python -m bench.cold_start              # 10 processes per handler
    .venv/bin/python -m bench.cold_start --runs 20 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import bench_main, command_line, machine_line, median, use_code_paths

use_code_paths()

from local.functions import LocalAws, lambda_environment  # noqa: E402
from local.template import load_template  # noqa: E402

HEADING = "## Cold start"
BOTO3_ONLY = """# A handler that imports only boto3.
import boto3


def lambda_handler(event, context):
    return {"boto3": boto3.__version__}
"""
# Runs in the child: time the import, report it with the memory and the packages it loaded.
PROBE = """
import json, resource, sys, time
started = time.perf_counter()
__import__(sys.argv[1])
elapsed = time.perf_counter() - started
roots = sorted({name.split(".")[0] for name, module in list(sys.modules.items())
                if "site-packages" in (getattr(module, "__file__", None) or "")})
print(json.dumps({"ms": elapsed * 1000, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "modules": len(sys.modules), "packages": roots}))
"""


@dataclass
class Handler:
    name: str
    module: str
    paths: list[Path]
    environment: dict[str, str]
    samples: list[float] = field(default_factory=list)
    rss_mib: float = 0.0
    modules: int = 0
    packages: list[str] = field(default_factory=list)
    direct: list[tuple[str, float]] = field(default_factory=list)  # (module, cumulative ms)


def handlers(boto3_dir: Path) -> list[Handler]:
    found = []
    for spec in load_template().functions({}, {}):
        environment = lambda_environment(spec, LocalAws("http://127.0.0.1:9"))
        module = spec.handler.rsplit(".", 1)[0]
        found.append(Handler(spec.logical_id, module, [spec.code_uri, *spec.layer_dirs], environment))
    baseline_env = {k: v for k, v in found[0].environment.items() if not k.startswith("POWERTOOLS")}
    found.append(Handler("boto3 only (baseline)", "boto3_only_handler", [boto3_dir], baseline_env))
    return found


def child(handler: Handler, *, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    environment = {**handler.environment, "PYTHONPATH": os.pathsep.join(str(path) for path in handler.paths)}
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-c", PROBE, handler.module],
        env=environment,
        cwd=handler.paths[0],
        capture_output=True,
        text=True,
        check=True,
    )


def direct_imports(stderr: str, module: str) -> list[tuple[str, float]]:
    """The modules the handler module itself imported (first time), with their cumulative time.

    `-X importtime` prints children before their parent, each indented two spaces per level; the
    handler's direct imports are the entries one level deeper than the handler's own line.
    """
    entries: list[tuple[int, str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        _, total_us, label = line.split("|", 2)
        depth = (len(label) - len(label.lstrip(" ")) - 1) // 2
        entries.append((depth, label.strip(), int(total_us.strip()) / 1000))
    position = next(i for i, (depth, name, _) in enumerate(entries) if name == module)
    own_depth = entries[position][0]
    children: list[tuple[str, float]] = []
    for depth, name, cumulative in reversed(entries[:position]):
        if depth <= own_depth:
            break
        if depth == own_depth + 1:
            children.append((name, cumulative))
    return sorted(children, key=lambda item: -item[1])


def run(runs: int) -> list[Handler]:
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as directory:
        Path(directory, "boto3_only_handler.py").write_text(BOTO3_ONLY, encoding="utf-8")
        found = handlers(Path(directory))
        for handler in found:
            child(handler)  # bytecode compiled once, as a deployed package would ship it
        for _ in range(runs):
            for handler in found:  # interleaved, so that a busy moment hits them all alike
                result = json.loads(child(handler).stdout)
                handler.samples.append(result["ms"])
                handler.rss_mib, handler.modules, handler.packages = (
                    result["rss_mib"],
                    result["modules"],
                    result["packages"],
                )
        for handler in found:
            handler.direct = direct_imports(child(handler, importtime=True).stderr, handler.module)
    return found


def markdown(found: list[Handler], runs: int, argv: list[str]) -> str:
    baseline = median(found[-1].samples)
    lines = [
        HEADING,
        "",
        "`bench/cold_start.py`: `import <handler module>` timed in a fresh Python process with the",
        "function's environment from template.yaml and Lambda's import path (code directory, then",
        f"the layer); median of {runs} processes per handler (interleaved), bytecode already compiled",
        "(a deployment package without `__pycache__` compiles on its first start, which adds to these).",
        "Peak RSS is the process's after the import. Third-party packages: the packages loaded from",
        "site-packages (on Lambda, boto3 and botocore come with the runtime, Powertools from its layer).",
        machine_line(),
        f"Command: `{command_line('bench.cold_start', argv)}`",
        "",
        "| handler | import (median) | min-max | vs boto3 only | peak RSS | modules loaded | third-party packages |",
        "|---|---|---|---|---|---|---|",
    ]
    for handler in found:
        ms, fastest, slowest = median(handler.samples), min(handler.samples), max(handler.samples)
        lines.append(
            f"| {handler.name} (`{handler.module}`) | {ms:.0f} ms | {fastest:.0f}-{slowest:.0f} ms "
            f"| {ms / baseline:.1f}x | {handler.rss_mib:.0f} MiB | {handler.modules} | {', '.join(handler.packages)} |"
        )
    lines += [
        "",
        "What each handler imports at start (its own imports, cumulative time of each, from one",
        "`-X importtime` run; a module already loaded by an earlier import costs nothing here):",
        "",
    ]
    for handler in found[:-1]:
        shown = ", ".join(f"`{name}` {ms:.0f} ms" for name, ms in handler.direct if ms >= 0.5)
        lines.append(f"- **{handler.name}**: {shown}")
    lines.append("")
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per handler (median reported)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    return markdown(run(args.runs), args.runs, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
