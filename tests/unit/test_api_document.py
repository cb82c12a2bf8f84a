"""The one OpenAPI document: every route of every function, the other functions' part up to date."""

from __future__ import annotations

import json
from typing import Any

from lambda_fakes import FakeContext, http_event

import uploads_handler
from local import verdicts
from local.api_document import build, render
from local.template import load_template
from upload_core import verdict_events
from upload_edge.api_document import OTHER_FUNCTIONS_DOCUMENT, merge


def served_document() -> dict[str, Any]:
    event = http_event("GET", "/openapi.json", sub=None)
    response = uploads_handler.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    assert response["statusCode"] == 200
    return dict(json.loads(response["body"]))


def test_the_committed_part_of_the_other_functions_is_current() -> None:
    # Given the part generated from the imports and files functions' resolvers now
    fresh = render(build())
    # Then it is the one the layer ships (regenerate: .venv/bin/python -m local.api_document)
    assert OTHER_FUNCTIONS_DOCUMENT.read_text(encoding="utf-8") == fresh


def test_the_served_document_covers_every_route_of_every_function() -> None:
    routes = {route.route_key for route in load_template().routes()} - {"GET /openapi.json"}
    document = served_document()
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    assert routes == documented
    assert {"FileOut", "FilesOut", "CreateImportRequest", "ErrorOut"} <= set(document["components"]["schemas"])


def test_merging_refuses_a_path_documented_twice_or_a_schema_that_differs() -> None:
    base = {"paths": {"/a": {"get": {}}}, "components": {"schemas": {"E": {"type": "object"}}}}
    for part in (
        {"paths": {"/a": {"get": {}}}},
        {"paths": {}, "components": {"schemas": {"E": {"type": "string"}}}},
    ):
        try:
            merge(base, [part])
        except ValueError:
            continue
        raise AssertionError(f"{part} was merged")
    merged = merge(base, [{"paths": {"/a": {"delete": {}}, "/b": {"get": {}}}}])
    assert set(merged["paths"]["/a"]) == {"get", "delete"} and "/b" in merged["paths"]


def test_the_local_subscriber_matches_the_published_source() -> None:
    assert verdicts.SOURCE == verdict_events.SOURCE
