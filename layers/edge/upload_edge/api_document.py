"""One OpenAPI document for the whole HTTP API, although its routes live in several functions.

``GET /openapi.json`` is served by the uploads function, which cannot import the other functions'
code (each is its own package). Their part of the document (paths and schemas) is generated from
their resolvers into OTHER_FUNCTIONS_DOCUMENT, shipped in this layer, and merged with the uploads
function's own at start; tests/unit/test_api_document.py fails when the committed part differs
from a fresh one (regenerate it with ``.venv/bin/python -m local.api_document``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

OTHER_FUNCTIONS_DOCUMENT = Path(__file__).with_name("other_functions.openapi.json")


def other_functions_part() -> dict[str, Any]:
    return dict(json.loads(OTHER_FUNCTIONS_DOCUMENT.read_text(encoding="utf-8")))


def merge(base: Mapping[str, Any], parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``base`` with the paths and schemas of ``parts``. A schema two functions share (the error
    bodies) must be the same in both; a path may belong to one function only."""
    merged = json.loads(json.dumps(base))
    paths = merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for part in parts:
        for path, operations in (part.get("paths") or {}).items():
            clash = set(paths.get(path, {})) & set(operations)
            if clash:
                raise ValueError(f"{path} {sorted(clash)} is documented by two functions")
            paths.setdefault(path, {}).update(operations)
        for name, schema in ((part.get("components") or {}).get("schemas") or {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} differs between functions")
            schemas[name] = schema
    return dict(merged)


def part_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """What another function contributes: its paths and schemas."""
    return {
        "paths": document.get("paths") or {},
        "components": {"schemas": (document.get("components") or {}).get("schemas") or {}},
    }
