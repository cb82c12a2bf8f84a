"""template.yaml and samconfig.toml through SAM CLI itself: `sam validate --lint` and `sam build`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sam_tools import REGION, ROOT, SAM, requires_sam, run, sam_env, samconfig_environments

pytestmark = requires_sam


@pytest.mark.slow
def test_sam_build_succeeds_with_python_313(tmp_path: Path) -> None:
    # Given the python3.13 the setup links into .tools/bin (sam build looks for it on PATH)
    tools = ROOT / ".tools" / "bin"
    if not (tools / "python3.13").exists():
        pytest.skip("run scripts/bootstrap.sh first: it links python3.13 into .tools/bin")
    env = {**sam_env(), "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    # When the whole application is built from scratch into a scratch directory
    build_dir = tmp_path / "build"
    result = run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache")], timeout=600, env=env
    )
    # Then every function and the layer (with its own dependencies) are built
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    layer = build_dir / "CoreLayer" / "python"
    assert (layer / "upload_core" / "uploads.py").is_file()
    assert (layer / "PIL").is_dir()
    assert (build_dir / "EdgeLayer" / "python" / "upload_edge" / "http_errors.py").is_file()
    # The other functions' part of the OpenAPI document ships with the edge layer
    assert (build_dir / "EdgeLayer" / "python" / "upload_edge" / "other_functions.openapi.json").is_file()
    for function, module in [
        ("UploadsFunction", "uploads_handler.py"),
        ("ImportsFunction", "imports_handler.py"),
        ("ValidatorFunction", "validator_handler.py"),
        ("FilesFunction", "files_handler.py"),
    ]:
        assert (build_dir / function / module).is_file(), function


def test_sam_validate_lint_passes() -> None:
    # Given the repository's template / When sam validates it with cfn-lint
    result = run([str(SAM), "validate", "--lint", "--region", REGION])
    # Then it has no findings
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.parametrize("environment", samconfig_environments())
def test_sam_validate_accepts_every_samconfig_environment(environment: str) -> None:
    # Given a named environment of samconfig.toml / When sam validate runs with it
    result = run([str(SAM), "validate", "--config-env", environment])
    # Then the configuration is accepted and the template is valid
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
