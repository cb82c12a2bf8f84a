"""The bypass suite: every way a client could store more than it declared or reserved, over real
HTTP against the local stack (MiniStack enforcing signed lengths, POST policies and signatures;
the registry in its DynamoDB). Every attempt is refused, and after each scenario the owner's
usage in the registry matches what S3 holds.

Per-owner limits are set as an operator sets them, with overrides in the registry
(docs/limits.md); the rate and the undeclared-size limit are stack Parameters, so those
scenarios run on a second stack started with small values.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from api_client import ApiClient
from upload_flow import MIB, chunk, pattern, put_part, sign

from local.stack import LocalStack
from tests import image_corpus as corpus
from tests.stack_limits import GENEROUS_LIMITS
from upload_core.registry import PlanState, Registry, Usage, UsageDefaults

RATE_PER_MINUTE = 6
UNDECLARED_LIMIT = 6 * MIB


def registry_of(stack: LocalStack) -> Registry:
    table = stack.template.function("UploadsFunction", stack.resource_values, stack.parameter_overrides).environment[
        "REGISTRY_TABLE"
    ]
    # Defaults only matter for reading usage of owners without an override.
    return Registry(table, UsageDefaults(quota_bytes=1 << 50, max_uploads=100_000), client=stack.dynamodb_client())


def new_user(registry: Registry, *, quota_bytes: int | None = None, max_uploads: int | None = None) -> str:
    user = f"bypass-{uuid.uuid4().hex[:12]}"
    if quota_bytes is not None or max_uploads is not None:
        registry.set_limits(user, quota_bytes=quota_bytes, max_uploads=max_uploads)
    return user


def create(api: ApiClient, user: str, size: int, **extra: Any) -> requests.Response:
    body = {"filename": "photo.png", "contentType": "image/png", "size": size, **extra}
    return api.request("POST", "/uploads", user=user, json=body)


def created(api: ApiClient, user: str, size: int, **extra: Any) -> dict[str, Any]:
    response = create(api, user, size, **extra)
    assert response.status_code == 201, response.text
    return dict(response.json())


def complete(api: ApiClient, user: str, upload: dict[str, Any], **body: Any) -> requests.Response:
    return api.request(
        "POST", f"/uploads/{upload['uploadId']}/complete", user=user, json={"key": upload["key"], **body}
    )


def stored_bytes_in_s3(s3: Any, bucket: str, user: str) -> int:
    """What S3 holds for the owner: every version of every object under their prefix."""
    total = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"uploads/{user}/"):
        total += sum(int(version["Size"]) for version in page.get("Versions", []))
    return total


def assert_usage_matches_s3(registry: Registry, s3: Any, bucket: str, user: str, *, reserved: int = 0) -> Usage:
    usage = registry.usage(user)
    assert usage.stored_bytes == stored_bytes_in_s3(s3, bucket, user), usage
    assert usage.reserved_bytes == reserved, usage
    return usage


def wait_for_status(s3: Any, bucket: str, key: str, version_id: str, timeout: float = 30.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id)["TagSet"]
        except s3.exceptions.ClientError:
            return None  # removed (quarantined or refused)
        status = {tag["Key"]: tag["Value"] for tag in tags}.get("upload-status")
        if status in ("valid", "rejected"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"no verdict for {key} {version_id}")


def post_form(form: dict[str, Any], body: bytes, **changed_fields: str) -> requests.Response:
    fields = {**form["fields"], **changed_fields}
    return requests.post(form["url"], data=fields, files={"file": ("x.png", body, "image/png")}, timeout=30)


def companion_form(api: ApiClient, user: str) -> dict[str, Any]:
    """A form whose size the client did not declare (Uppy's GET /s3/params): any size up to the
    form limit, so a replay may carry other bytes of another length."""
    response = api.request("GET", "/s3/params", user=user, params={"filename": "f.png", "type": "image/png"})
    assert response.status_code == 200, response.text
    form = dict(response.json())
    form["key"] = form["fields"]["key"]
    return form


@pytest.fixture(scope="module")
def registry(stack: LocalStack) -> Registry:
    return registry_of(stack)


# ----------------------------------------------------------------------------- exact part sizes


@pytest.mark.parametrize("delta", [+1, -1, +MIB], ids=["one-byte-longer", "one-byte-shorter", "a-mib-longer"])
def test_a_part_of_any_other_length_than_its_plan_is_refused_by_s3(
    api: ApiClient, s3: Any, bucket: str, registry: Registry, delta: int
) -> None:
    user = new_user(registry)
    data = pattern(6 * MIB)
    upload = created(api, user, len(data), partSize=5 * MIB)
    signed = sign(api, upload, [1, 2], user=user)
    assert signed[1]["size"] == 5 * MIB and signed[2]["size"] == MIB
    body = chunk(data, upload, 2)
    altered = body + b"x" * delta if delta > 0 else body[:delta]
    assert put_part(signed[2], altered).status_code == 403
    assert put_part(signed[1], chunk(data, upload, 1)[:-1]).status_code == 403
    listed = s3.list_parts(Bucket=bucket, Key=upload["key"], UploadId=upload["uploadId"]).get("Parts", [])
    assert listed == []
    assert_usage_matches_s3(registry, s3, bucket, user, reserved=len(data))


@pytest.mark.parametrize("numbers", [[3], [2, 3], [0], [10_000], [10_001]])
def test_part_numbers_outside_the_plan_get_no_url(
    api: ApiClient, s3: Any, bucket: str, registry: Registry, numbers: list[int]
) -> None:
    user = new_user(registry)
    upload = created(api, user, 6 * MIB, partSize=5 * MIB)
    response = api.request(
        "POST",
        f"/uploads/{upload['uploadId']}/parts",
        user=user,
        json={"key": upload["key"], "partNumbers": numbers},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("InvalidPartNumber", "InvalidRequest")
    assert "url" not in response.text


def test_completing_with_parts_missing_or_out_of_plan_is_refused(
    api: ApiClient, s3: Any, bucket: str, registry: Registry
) -> None:
    user = new_user(registry)
    data = pattern(11 * MIB)
    upload = created(api, user, len(data), partSize=5 * MIB)
    signed = sign(api, upload, [1, 2], user=user)
    etags = [put_part(signed[n], chunk(data, upload, n)).headers["ETag"] for n in (1, 2)]
    # Two of three parts: missing part 3
    refused = complete(api, user, upload)
    assert refused.status_code == 400 and refused.json()["code"] == "IncompleteUpload"
    # A parts list naming only what exists is still not the plan
    partial = [{"partNumber": n, "etag": etag} for n, etag in zip((1, 2), etags, strict=True)]
    refused = complete(api, user, upload, parts=partial)
    assert refused.status_code == 400
    assert s3.list_objects_v2(Bucket=bucket, Prefix=upload["key"]).get("KeyCount", 0) == 0
    assert_usage_matches_s3(registry, s3, bucket, user, reserved=len(data))


def test_an_upload_completes_with_exactly_its_declared_bytes(
    api: ApiClient, s3: Any, bucket: str, registry: Registry
) -> None:
    user = new_user(registry)
    data = pattern(6 * MIB + 7)
    upload = created(api, user, len(data), partSize=5 * MIB)
    signed = sign(api, upload, [1, 2], user=user)
    for number in (1, 2):
        # A longer body for the same part is refused; the exact one is stored
        assert put_part(signed[number], chunk(data, upload, number) + b"extra").status_code == 403
        assert put_part(signed[number], chunk(data, upload, number)).status_code == 200
    done = complete(api, user, upload)
    assert done.status_code == 200, done.text
    assert done.json()["size"] == len(data)
    assert s3.head_object(Bucket=bucket, Key=upload["key"])["ContentLength"] == len(data)
    assert_usage_matches_s3(registry, s3, bucket, user)
    # The part URLs die with the upload: reusing one afterwards is refused
    assert put_part(signed[1], chunk(data, upload, 1)).status_code == 404


# ----------------------------------------------------------------------------- quotas and in-flight limits


def test_fifty_racing_creates_never_overshoot_the_quota(
    api: ApiClient, s3: Any, bucket: str, registry: Registry
) -> None:
    # Given an owner whose quota holds exactly ten 1 MiB uploads
    user = new_user(registry, quota_bytes=10 * MIB)
    start = threading.Barrier(50)

    def attempt(_: int) -> int:
        start.wait()
        return create(api, user, MIB).status_code

    # When fifty creates race
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(attempt, range(50)))
    # Then exactly ten went through, every other one is a 413, and the usage says ten
    assert statuses.count(201) == 10, statuses
    assert statuses.count(413) == 40, statuses
    usage = assert_usage_matches_s3(registry, s3, bucket, user, reserved=10 * MIB)
    assert usage.uploads_in_flight == 10


def test_over_quota_is_a_413_with_the_usage_and_the_limit(api: ApiClient, registry: Registry) -> None:
    user = new_user(registry, quota_bytes=8 * MIB)
    created(api, user, 5 * MIB)
    refused = create(api, user, 4 * MIB)
    assert refused.status_code == 413
    body = refused.json()
    assert body["code"] == "QuotaExceeded"
    assert body["limit"] == 8 * MIB
    assert body["usage"]["reservedBytes"] == 5 * MIB and body["usage"]["quotaBytes"] == 8 * MIB
    # A form counts against the same quota
    form = api.request(
        "POST", "/uploads/form", user=user, json={"filename": "f.png", "contentType": "image/png", "size": 4 * MIB}
    )
    assert form.status_code == 413


def test_creates_beyond_the_in_flight_limit_are_429_until_one_ends(api: ApiClient, registry: Registry) -> None:
    user = new_user(registry, max_uploads=3)
    uploads = [created(api, user, 10) for _ in range(3)]
    refused = create(api, user, 10)
    assert refused.status_code == 429 and refused.json()["code"] == "TooManyUploads"
    assert int(refused.headers["Retry-After"]) > 0
    # Aborting one frees its slot (and its bytes)
    aborted = api.request("DELETE", f"/uploads/{uploads[0]['uploadId']}", user=user, params={"key": uploads[0]["key"]})
    assert aborted.status_code == 204
    assert create(api, user, 10).status_code == 201
    assert registry.usage(user).reserved_bytes == 30


# ----------------------------------------------------------------------------- other owners, other keys


def test_another_owner_can_neither_sign_complete_nor_abort(api: ApiClient, registry: Registry) -> None:
    owner, intruder = new_user(registry), new_user(registry)
    upload = created(api, owner, 6 * MIB, partSize=5 * MIB)
    path = f"/uploads/{upload['uploadId']}"
    attempts = [
        api.request("POST", f"{path}/parts", user=intruder, json={"key": upload["key"], "partNumbers": [1]}),
        api.request("POST", f"{path}/complete", user=intruder, json={"key": upload["key"]}),
        api.request("DELETE", path, user=intruder, params={"key": upload["key"]}),
    ]
    assert [response.status_code for response in attempts] == [403, 403, 403]
    plan = registry.plan(upload["key"])
    assert plan is not None and plan.state is PlanState.OPEN


def test_an_upload_id_is_good_only_for_its_own_key(api: ApiClient, registry: Registry) -> None:
    user = new_user(registry)
    first, second = created(api, user, 10), created(api, user, 10)
    response = api.request(
        "POST",
        f"/uploads/{second['uploadId']}/parts",
        user=user,
        json={"key": first["key"], "partNumbers": [1]},
    )
    assert response.status_code == 404


def test_a_part_url_does_not_carry_unsigned_copy_headers(
    api: ApiClient, s3: Any, bucket: str, registry: Registry
) -> None:
    # Given another object in the bucket, and a part URL of one's own
    user = new_user(registry)
    upload = created(api, user, 10)
    part = sign(api, upload, [1], user=user)[1]
    # When the part URL is used to copy that object in
    response = requests.put(
        part["url"], headers={"x-amz-copy-source": f"/{bucket}/{upload['key']}"}, data=b"0123456789", timeout=30
    )
    # Then S3 (strict like AWS) refuses the unsigned header
    assert response.status_code == 403 and "HeadersNotSigned" in response.text


# ----------------------------------------------------------------------------- forms and second versions


def test_a_form_binds_size_and_type(api: ApiClient, registry: Registry) -> None:
    user = new_user(registry)
    body = corpus.png()
    form = api.request(
        "POST", "/uploads/form", user=user, json={"filename": "f.png", "contentType": "image/png", "size": len(body)}
    ).json()
    assert post_form(form, body + b"x").status_code in (400, 403)
    assert post_form(form, body[:-1]).status_code in (400, 403)
    assert post_form(form, body, **{"Content-Type": "text/html"}).status_code in (400, 403)
    assert post_form(form, body, key=form["key"].replace(user, "someone-else")).status_code in (400, 403)
    assert post_form(form, body).status_code == 201


def test_a_replayed_form_never_changes_what_the_key_serves(
    api: ApiClient, s3: Any, bucket: str, registry: Registry
) -> None:
    # Given a form whose upload the validator passed
    user = new_user(registry)
    original = corpus.png(40, 30)
    form = companion_form(api, user)
    assert post_form(form, original).status_code == 201
    first = s3.head_object(Bucket=bucket, Key=form["key"])["VersionId"]
    assert wait_for_status(s3, bucket, form["key"], first) == "valid"
    # When the same form is posted again with other (valid-looking) bytes
    replay = post_form(form, corpus.png(41, 30))
    assert replay.status_code == 201  # S3 accepts it: the policy is still valid
    # Then the second version is refused by the validator and removed, and the key serves the original
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        versions = s3.list_object_versions(Bucket=bucket, Prefix=form["key"]).get("Versions", [])
        if [v["VersionId"] for v in versions] == [first]:
            break
        time.sleep(0.1)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=form["key"]).get("Versions", [])
    assert [v["VersionId"] for v in versions] == [first]
    assert s3.get_object(Bucket=bucket, Key=form["key"])["Body"].read() == original
    assert_usage_matches_s3(registry, s3, bucket, user)
    assert registry.usage(user).stored_bytes == len(original)


def test_a_rejected_file_leaves_the_usage(api: ApiClient, s3: Any, bucket: str, registry: Registry) -> None:
    user = new_user(registry)
    hostile = corpus.png() + b"PK\x05\x06" + bytes(18)  # an archive's end record after IEND
    form = companion_form(api, user)
    assert post_form(form, hostile).status_code == 201
    version = s3.head_object(Bucket=bucket, Key=form["key"])["VersionId"]
    wait_for_status(s3, bucket, form["key"], version)
    deadline = time.monotonic() + 30
    while registry.usage(user).uploads_in_flight and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_usage_matches_s3(registry, s3, bucket, user)
    assert registry.usage(user).used_bytes == 0


# ----------------------------------------------------------------------------- rates, undeclared uploads, the sweeper


@pytest.fixture(scope="module")
def tight_stack() -> Iterator[LocalStack]:
    overrides = {
        **GENEROUS_LIMITS,
        "MaxRequestsPerMinute": str(RATE_PER_MINUTE),
        "MaxUndeclaredUploadBytes": str(UNDECLARED_LIMIT),
    }
    with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=overrides) as running:
        yield running


def test_the_request_rate_is_limited_per_owner_with_retry_after(tight_stack: LocalStack) -> None:
    api, registry = ApiClient(tight_stack), registry_of(tight_stack)
    user, other = new_user(registry), new_user(registry)
    statuses = [create(api, user, 10).status_code for _ in range(RATE_PER_MINUTE + 2)]
    # Usually all in one minute; a minute boundary in between resets the count once at most
    assert statuses.count(429) >= 1, statuses
    refused = create(api, user, 10)
    if refused.status_code == 429:
        assert refused.json()["code"] == "TooManyRequests"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert create(api, other, 10).status_code == 201  # per owner


def test_an_undeclared_upload_cannot_complete_beyond_its_reservation(tight_stack: LocalStack) -> None:
    api, registry, s3 = ApiClient(tight_stack), registry_of(tight_stack), tight_stack.s3_client()
    user = new_user(registry)
    response = api.request(
        "POST", "/s3/multipart", user=user, json={"filename": "x.png", "type": "image/png", "metadata": {}}
    )
    assert response.status_code == 200, response.text
    upload = response.json()
    assert registry.usage(user).reserved_bytes == UNDECLARED_LIMIT
    # Part numbers beyond what the reservation can hold get no URL
    beyond = api.request("GET", f"/s3/multipart/{upload['uploadId']}/3", user=user, params={"key": upload["key"]})
    assert beyond.status_code == 400
    etags = []
    for number, size in ((1, 5 * MIB), (2, 2 * MIB)):
        url = api.request(
            "GET", f"/s3/multipart/{upload['uploadId']}/{number}", user=user, params={"key": upload["key"]}
        ).json()["url"]
        etags.append({"PartNumber": number, "ETag": requests.put(url, data=b"z" * size, timeout=30).headers["ETag"]})
    done = api.request(
        "POST",
        f"/s3/multipart/{upload['uploadId']}/complete",
        user=user,
        params={"key": upload["key"]},
        json={"parts": etags},
    )
    assert done.status_code == 413
    bucket = tight_stack.bucket
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=upload["key"]).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix=upload["key"]).get("KeyCount", 0) == 0
    assert_usage_matches_s3(registry, s3, bucket, user)


def test_the_sweeper_aborts_an_upload_beyond_its_reservation_and_releases_it(tight_stack: LocalStack) -> None:
    api, registry, s3 = ApiClient(tight_stack), registry_of(tight_stack), tight_stack.s3_client()
    bucket = tight_stack.bucket
    user = new_user(registry)
    upload = api.request(
        "POST", "/s3/multipart", user=user, json={"filename": "x.png", "type": "image/png", "metadata": {}}
    ).json()
    # Given a client that stored two 5 MiB parts against a 6 MiB reservation (and never completes)
    for number in (1, 2):
        url = api.request(
            "GET", f"/s3/multipart/{upload['uploadId']}/{number}", user=user, params={"key": upload["key"]}
        ).json()["url"]
        assert requests.put(url, data=b"z" * (5 * MIB), timeout=30).status_code == 200
    # When the sweeper runs
    report = tight_stack.run_scheduled("SweeperFunction")
    # Then the upload is aborted and its reservation released
    assert report["overReservation"] >= 1
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=upload["key"]).get("Uploads", []) == []
    usage = assert_usage_matches_s3(registry, s3, bucket, user)
    assert usage.uploads_in_flight == 0
    plan = registry.plan(upload["key"])
    assert plan is not None and plan.state is PlanState.REFUSED
