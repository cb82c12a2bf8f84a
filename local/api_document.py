"""Regenerate the other functions' part of the OpenAPI document (upload_edge/api_document.py).

.venv/bin/python -m local.api_document
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from local.template import REPO_ROOT

# The functions whose routes the uploads function's document does not know by itself.
OTHER_FUNCTIONS = (("functions/imports", "imports_handler"), ("functions/files", "files_handler"))
# Enough settings for the handlers to import (their routes do not depend on them).
_IMPORT_ENV = {
    "BUCKET_NAME": "document-bucket",
    "REGISTRY_TABLE": "document-registry",
    "ALLOWED_CONTENT_TYPES": "image/jpeg,image/png,image/gif,image/webp,image/avif",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


LAYERS = (REPO_ROOT / "layers" / "core", REPO_ROOT / "layers" / "edge")


def _edge() -> Any:
    """upload_edge.api_document (the layers are not on the local stack's own path)."""
    for layer in LAYERS:
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    return importlib.import_module("upload_edge.api_document")


def build() -> dict[str, Any]:
    edge = _edge()
    for name, value in _IMPORT_ENV.items():
        os.environ.setdefault(name, value)
    parts = []
    for folder, module in OTHER_FUNCTIONS:
        path = str(REPO_ROOT / folder)
        if path not in sys.path:
            sys.path.insert(0, path)
        app = importlib.import_module(module).app
        parts.append(edge.part_of(json.loads(app.get_openapi_json_schema(title="part", version="0"))))
    return dict(edge.merge({"paths": {}, "components": {"schemas": {}}}, parts))


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main() -> None:
    target = _edge().OTHER_FUNCTIONS_DOCUMENT
    target.write_text(render(build()), encoding="utf-8")
    print(f"wrote {target.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
