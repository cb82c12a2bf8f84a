"""Fixtures every test directory may use: the repository's template.yaml, parsed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as a plain document (short tags as long-form intrinsics); copy it before changing it."""
    return load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))
