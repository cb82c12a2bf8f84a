"""aws-sam-cli's environment (.venv-sam) driven from tests: sam, SAM's translator and cfn-lint.

cfn-lint reads a SAM template with SAM schemas and never sees the roles, permissions and stages
SAM generates, so a circular dependency through a generated role (bucket -> notification ->
function -> role -> bucket) is only visible after translating: hence `lint_translated`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
SAM_VENV = ROOT / ".venv-sam" / "bin"
SAM = SAM_VENV / "sam"
SAM_PYTHON = SAM_VENV / "python"
CFN_LINT = SAM_VENV / "cfn-lint"
REGION = "us-east-1"

requires_sam = pytest.mark.skipif(
    not (SAM.exists() and CFN_LINT.exists()),
    reason=".venv-sam (aws-sam-cli, cfn-lint) is missing: run scripts/bootstrap.sh (make test does)",
)

# Runs inside .venv-sam: translate a SAM template (YAML or JSON) to plain CloudFormation offline.
# Local code paths become placeholder S3 URIs (the translator insists on S3 locations), and the
# managed-policy map is empty because the template names no managed policy (X-Ray's is built
# from the partition).
TRANSLATE_SCRIPT = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as handle:
    template = yaml_parse(handle.read())
for resource in (template.get("Resources") or {}).values():
    properties = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        value = properties.get(key)
        if isinstance(value, str) and not value.startswith("s3://"):
            properties[key] = "s3://offline-artifacts/" + value.strip("/")
with open(target, "w", encoding="utf-8") as handle:
    json.dump(transform(template, {}, NoManagedPolicies()), handle, indent=1)
"""


def sam_env() -> dict[str, str]:
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def run(command: list[str], timeout: int = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env or sam_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def samconfig_environments() -> list[str]:
    with SAMCONFIG.open("rb") as handle:
        return [name for name, value in tomllib.load(handle).items() if isinstance(value, dict)]


def translate(source: Path, target: Path) -> Path:
    script = target.parent / "translate_sam.py"
    script.write_text(TRANSLATE_SCRIPT, encoding="utf-8")
    result = run([str(SAM_PYTHON), str(script), str(source), str(target)])
    assert result.returncode == 0, f"SAM translation failed:\n{result.stdout}\n{result.stderr}"
    return target


def cfn_lint_findings(path: Path) -> list[dict[str, Any]]:
    """cfn-lint's errors and warnings for a plain CloudFormation template (JSON formatter)."""
    result = run([str(CFN_LINT), "--format", "json", "--regions", REGION, "--", str(path)])
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"cfn-lint did not produce JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    assert isinstance(findings, list)
    return findings


def rule_ids(findings: list[dict[str, Any]]) -> set[str]:
    return {finding["Rule"]["Id"] for finding in findings}


def describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{finding['Rule']['Id']} {'/'.join(map(str, finding['Location']['Path']))}: {finding['Message']}"
        for finding in findings
    )


def lint_translated(document: dict[str, Any], directory: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings on `document` (a SAM template) after SAM has translated it."""
    source = directory / "template.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    return cfn_lint_findings(translate(source, directory / "translated.json"))
