"""The API's own OpenAPI document, and a property-based run (schemathesis) against the local stack.

Every operation of GET /openapi.json is called with generated requests, valid ones and invalid
ones, as a user with a valid bearer token; each response must be no 5xx, carry a status the
document lists, the content type it lists and a body that matches the listed schema, and an
invalid request must be refused with a 4xx. About half of the valid cases, as Hypothesis chooses,
aim at a real upload of the caller's (its id and key substituted in), so the run reaches S3 and
the completing, signing and aborting paths rather than stopping at the ownership check.

Bounded and deterministic: a fixed number of examples per operation, derandomized (the same
examples every run), no example database. FUZZ_EXAMPLES=<n> runs more.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from local.stack import LocalStack
from tests.import_support import Reply, SourceServer, image_bytes
from tests.registry_support import registry_of
from tests.stack_limits import GENEROUS_LIMITS
from upload_core.registry import FileRecord, FileStatus

pytestmark = pytest.mark.integration

USER = "fuzz-user"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PART = b"fuzzed part" * 100
TIMEOUT = 30


@dataclass
class RealUpload:
    upload_id: str
    key: str
    etag: str  # of its one uploaded part


class Resources:
    """The caller's real upload (re-created once a case has completed or aborted it) and a real
    stored object, for cases that aim at existing state."""

    def __init__(self, stack: LocalStack, source: SourceServer | None = None) -> None:
        self.stack = stack
        self.source = source
        self.base_url = stack.api_url
        self.headers = {"Authorization": f"Bearer {stack.token_for(USER)}"}
        self._upload: RealUpload | None = None
        self.statuses: dict[str, set[int]] = {}  # operation -> statuses seen
        self.object_key = self._complete(self._new_upload())

    def file_id(self) -> str:
        """A fresh file of the caller's, as the validator records a valid one (a delete or a
        fetch per case: each gets its own)."""
        file_id = uuid.uuid4().hex
        key = f"uploads/{USER}/{file_id}/fuzz.png"
        registry_of(self.stack).record_file(
            FileRecord(USER, file_id, key, "fuzz.png", 1, "image/png", "v1", FileStatus.VALID, 1_000)
        )
        return file_id

    def upload(self) -> RealUpload:
        if self._upload is None:
            self._upload = self._new_upload()
        return self._upload

    def spent(self) -> None:
        """The upload may have been completed or aborted: the next case gets a fresh one."""
        self._upload = None

    def _new_upload(self) -> RealUpload:
        body = {"filename": "fuzz.png", "contentType": "image/png", "size": len(PART)}
        created = self._call("POST", "/uploads", json=body).json()
        upload_id, key = created["uploadId"], created["key"]
        signed = self._call("POST", f"/uploads/{upload_id}/parts", json={"key": key, "partNumbers": [1]}).json()
        part = signed["parts"][0]
        put = requests.put(part["url"], data=PART, headers=part["headers"], timeout=TIMEOUT)
        assert put.status_code == 200
        return RealUpload(upload_id, key, put.headers["ETag"])

    def _complete(self, upload: RealUpload) -> str:
        self._call("POST", f"/uploads/{upload.upload_id}/complete", json={"key": upload.key})
        return upload.key

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.base_url + path, headers=self.headers, timeout=TIMEOUT, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        server.routes["/fuzz.png"] = Reply(headers=[("Content-Type", "image/png")], body=[image_bytes("PNG")])
        yield server


@pytest.fixture(scope="module")
def fuzz_stack(source: SourceServer) -> Iterator[LocalStack]:
    overrides = {"IMPORT_ALLOWED_DESTINATIONS": source.authority}
    with LocalStack(
        s3_port=0, api_port=0, env_overrides=overrides, s3_events=False, parameter_overrides=GENEROUS_LIMITS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def document(fuzz_stack: LocalStack) -> dict[str, Any]:
    response = requests.get(fuzz_stack.api_url + "/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_document_is_public_and_describes_only_routed_operations(
    fuzz_stack: LocalStack, document: dict[str, Any]
) -> None:
    # Given the template's routes and the document the API serves without a token
    routes = {route.route_key for route in fuzz_stack.template.routes()}
    assert document["openapi"].startswith("3.")
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    # Then every documented operation is one API Gateway routes (else it answers 404)
    assert sorted(documented - routes) == []
    # And every route of every function is documented (Companion's, the imports' and the files'
    # too), but the document itself
    assert sorted(routes - documented) == ["GET /openapi.json"]


def test_every_documented_error_has_the_error_shape(document: dict[str, Any]) -> None:
    # Given the document / Then each 4xx and 5xx of each operation is described by a JSON schema
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert "$ref" in schema, f"{method.upper()} {path} {status}"


def _aim_at(case: Any, resources: Resources) -> None:
    """Point a generated case at the caller's real upload (or object, file, import source), with
    an allowed content type, a size within the limit and plausible part numbers, keeping
    everything else."""
    upload, object_key = resources.upload(), resources.object_key
    if "fileId" in (case.path_parameters or {}):
        case.path_parameters["fileId"] = resources.file_id()
    if isinstance(case.query, dict) and "cursor" in case.query:
        del case.query["cursor"]  # a generated cursor is not one the API gave: a 400 by design
    if isinstance(case.query, dict) and isinstance(case.query.get("limit"), int):
        case.query["limit"] = max(1, min(100, case.query["limit"]))
    if case.path == "/imports" and isinstance(case.body, dict) and resources.source is not None:
        case.body["url"] = resources.source.url("/fuzz.png")
        case.body.pop("filename", None)
    if "uploadId" in (case.path_parameters or {}):
        case.path_parameters["uploadId"] = upload.upload_id
    # The real upload is planned in one part: other part numbers are refused by its plan.
    if isinstance((case.path_parameters or {}).get("partNumber"), int):
        case.path_parameters["partNumber"] = 1
    if isinstance(case.query, dict) and "partNumbers" in case.query:
        case.query["partNumbers"] = "1"
    if isinstance(case.query, dict) and "key" in case.query:
        case.query["key"] = object_key if case.path == "/objects/status" else upload.key
    if isinstance(case.query, dict) and "type" in case.query:
        case.query["type"] = "image/png"
    if isinstance(case.body, dict):
        body = case.body
        if "key" in body:
            body["key"] = upload.key
        if "contentType" in body:
            body["contentType"] = "image/png"
        if "type" in body:  # Companion's name for it
            body["type"] = "image/png"
        if isinstance(body.get("size"), int):
            body["size"] = body["size"] % (64 * 1024 * 1024)
        if isinstance(body.get("partNumbers"), list) or case.path == "/uploads/{uploadId}/parts":
            body["partNumbers"] = [1]
        for noisy in ("partSize", "metadata", "checksumAlgorithm", "parts"):
            body.pop(noisy, None)
        if case.path == "/s3/sign":
            # Uppy 6's first request for a file: create a multipart upload for it.
            body.update(method="POST", name="fuzz.png", type="image/png", size=len(PART))
            for later in ("uploadId", "partNumber", "partSize", "expiresIn"):
                body.pop(later, None)
        if case.path == "/uploads/batch" and isinstance(body.get("files"), list):
            # Each file as a form is aimed: an allowed type, a size within the limit, a CRC32.
            for file in body["files"]:
                if isinstance(file, dict):
                    file.update(contentType="image/png", checksumCrc32="AAAAAA==")
                    if isinstance(file.get("size"), int):
                        file["size"] = file["size"] % (64 * 1024 * 1024)
        if case.path.startswith("/s3/") and case.path.endswith("/complete"):
            body["parts"] = [{"PartNumber": 1, "ETag": upload.etag}]  # Companion's parts are required


def _run_operation(operation: Any, mode: GenerationMode, resources: Resources) -> None:
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, aim: bool) -> None:
        if aim and mode is GenerationMode.POSITIVE:  # an invalid case must stay invalid
            _aim_at(case, resources)
        try:
            response = case.call_and_validate(base_url=resources.base_url, headers=resources.headers, checks=checks)
            resources.statuses.setdefault(operation.label, set()).add(response.status_code)
        finally:
            if aim and case.method.upper() in ("POST", "DELETE") and case.path not in ("/uploads", "/imports"):
                resources.spent()

    run()


def test_generated_requests_get_documented_answers_and_never_a_5xx(
    fuzz_stack: LocalStack, source: SourceServer
) -> None:
    # Given the served document and a caller with a valid token
    schema = schemathesis.openapi.from_url(fuzz_stack.api_url + "/openapi.json")
    # A generated body over the API's 1 MiB limit is refused as too large (413, documented on every
    # operation) before its content is looked at: a rejection too.
    rejection = schema.config.checks.negative_data_rejection
    schema.config.checks.negative_data_rejection = type(rejection)(
        expected_statuses=[*rejection.expected_statuses, "413"]
    )
    resources = Resources(fuzz_stack, source)
    failures: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is broken
        operations.append(result.ok())
    assert len(operations) >= 8
    # When every operation is called with generated valid and invalid requests
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if operation.path_parameters or operation.query or operation.body:
            modes.append(GenerationMode.NEGATIVE)  # an operation without inputs has no invalid request
        for mode in modes:
            try:
                _run_operation(operation, mode, resources)
            except (Exception, BaseExceptionGroup) as error:  # collect every operation's failures, then report
                failures.append(f"{operation.label} [{mode.value}]: {error}")
    # Then no response was a server error or broke the document
    assert not failures, "\n\n".join(failures)
    # And the run was not all refusals: every operation succeeded at least once
    assert {label for label, seen in resources.statuses.items() if min(seen) < 300} == {
        operation.label for operation in operations
    }, resources.statuses
