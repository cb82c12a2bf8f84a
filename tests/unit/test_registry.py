"""The registry against moto's DynamoDB, with the table built from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.registry_table import create_registry_table
from local.template import load_yaml
from upload_core.errors import TooManyRequests
from upload_core.registry import (
    PlanKind,
    PlanState,
    QuotaExceeded,
    Registry,
    UploadPlan,
    UsageDefaults,
    VersionClaim,
)

TEMPLATE = load_yaml((Path(__file__).resolve().parents[2] / "template.yaml").read_text())
TABLE = "registry-test"
MIB = 1024 * 1024
DEFAULTS = UsageDefaults(quota_bytes=100 * MIB, max_uploads=5)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_registry_table(client, TEMPLATE, TABLE)
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(dynamodb: Any, clock: Clock) -> Registry:
    return Registry(TABLE, DEFAULTS, client=dynamodb, clock=clock)


def plan(key: str, size: int, *, owner: str = "alice", expires_at: int = 1_800_003_600, **extra: Any) -> UploadPlan:
    return UploadPlan(
        key=key,
        owner=owner,
        kind=extra.pop("kind", PlanKind.MULTIPART),
        reserved_bytes=size,
        created_at=1_800_000_000,
        expires_at=expires_at,
        declared_size=size,
        **extra,
    )


def test_reserve_counts_bytes_and_slots_and_records_the_plan(registry: Registry) -> None:
    # Given a fresh owner, When a 10 MiB upload is reserved
    registry.reserve(plan("k1", 10 * MIB, part_size=8 * MIB, part_count=2))
    # Then the usage and the plan say so
    usage = registry.usage("alice")
    assert (usage.reserved_bytes, usage.stored_bytes, usage.uploads_in_flight) == (10 * MIB, 0, 1)
    stored = registry.plan("k1")
    assert stored is not None
    assert (stored.state, stored.declared_size, stored.part_count) == (PlanState.CREATING, 10 * MIB, 2)
    assert stored.part_length(1) == 8 * MIB
    assert stored.part_length(2) == 2 * MIB


def test_reserve_refuses_what_would_pass_the_quota_with_usage_and_limit(registry: Registry) -> None:
    registry.reserve(plan("k1", 60 * MIB))
    with pytest.raises(QuotaExceeded) as refused:
        registry.reserve(plan("k2", 41 * MIB))
    assert refused.value.status == 413
    assert refused.value.details["limit"] == 100 * MIB
    assert refused.value.details["usage"]["usedBytes"] == 60 * MIB
    assert registry.plan("k2") is None
    # exactly up to the quota is fine
    registry.reserve(plan("k3", 40 * MIB))
    assert registry.usage("alice").used_bytes == 100 * MIB


def test_reserve_refuses_beyond_the_in_flight_limit_with_retry_after(registry: Registry) -> None:
    for index in range(DEFAULTS.max_uploads):
        registry.reserve(plan(f"k{index}", 1))
    with pytest.raises(TooManyRequests) as refused:
        registry.reserve(plan("one-more", 1))
    assert refused.value.code == "TooManyUploads"
    assert refused.value.headers["Retry-After"].isdigit()


def test_a_plan_key_is_reserved_once(registry: Registry) -> None:
    registry.reserve(plan("k1", 1))
    with pytest.raises(Exception, match="already exists"):
        registry.reserve(plan("k1", 1))
    assert registry.usage("alice").uploads_in_flight == 1


def test_per_owner_overrides_replace_the_defaults(registry: Registry) -> None:
    registry.set_limits("alice", quota_bytes=5, max_uploads=1)
    with pytest.raises(QuotaExceeded):
        registry.reserve(plan("k1", 6))
    registry.reserve(plan("k1", 5))
    registry.set_limits("alice", quota_bytes=None, max_uploads=None)
    assert registry.usage("alice").quota_bytes == DEFAULTS.quota_bytes


def test_settle_turns_the_reservation_into_stored_bytes_once(registry: Registry) -> None:
    registry.reserve(plan("k1", 10))
    registry.open("k1", "upload-1")
    opened = registry.plan("k1")
    assert opened is not None and opened.state is PlanState.OPEN and opened.upload_id == "upload-1"
    assert registry.settle(opened, 7) is True
    assert registry.settle(opened, 7) is False  # idempotent
    usage = registry.usage("alice")
    assert (usage.stored_bytes, usage.reserved_bytes, usage.used_bytes, usage.uploads_in_flight) == (7, 0, 7, 0)


def test_release_gives_everything_back_once_and_never_after_settling(registry: Registry) -> None:
    registry.reserve(plan("k1", 10))
    registry.reserve(plan("k2", 20))
    first, second = registry.plan("k1"), registry.plan("k2")
    assert first is not None and second is not None
    assert registry.release(first, PlanState.ABORTED) is True
    assert registry.release(first, PlanState.EXPIRED) is False
    assert registry.settle(second, 20) is True
    assert registry.release(second, PlanState.ABORTED) is False
    usage = registry.usage("alice")
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (20, 0, 0)
    with pytest.raises(ValueError, match="does not"):
        registry.release(second, PlanState.OPEN)


def test_open_plans_lists_reserving_plans_and_those_past_their_time(registry: Registry) -> None:
    registry.reserve(plan("soon", 1, expires_at=1_800_000_100))
    registry.reserve(plan("later", 1, expires_at=1_800_009_000))
    registry.reserve(plan("done", 1, expires_at=1_800_000_050))
    done = registry.plan("done")
    assert done is not None
    registry.settle(done, 1)
    assert {p.key for p in registry.open_plans()} == {"soon", "later"}
    assert [p.key for p in registry.open_plans(expired_before=1_800_000_200)] == ["soon"]


def test_a_reservation_decided_on_a_stale_read_is_decided_again(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a read of the usage that another create has overtaken (60 of 100 MiB used since)
    stale = registry.usage("alice")
    registry.reserve(plan("other", 60 * MIB))
    reads = iter([stale])
    real_usage = registry.usage
    monkeypatch.setattr(registry, "usage", lambda owner: next(reads, None) or real_usage(owner))
    # When a 50 MiB reservation is decided on the stale read
    with pytest.raises(QuotaExceeded):
        registry.reserve(plan("k1", 50 * MIB))
    # Then the conditional write refused it, the fresh read decided again, and nothing overshot
    assert registry.usage("alice").used_bytes == 60 * MIB
    assert registry.plan("k1") is None


def test_the_request_rate_is_counted_per_minute_with_retry_after(registry: Registry, clock: Clock) -> None:
    clock.now = 1_800_000_030.0  # 30 s into a minute
    for _ in range(3):
        registry.count_request("alice", per_minute=3)
    with pytest.raises(TooManyRequests) as refused:
        registry.count_request("alice", per_minute=3)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "30"}
    registry.count_request("bob", per_minute=3)  # per owner
    clock.now += 30  # the next minute
    registry.count_request("alice", per_minute=3)


def test_a_key_keeps_its_first_version_and_refuses_any_other(registry: Registry) -> None:
    key = "uploads/alice/f1/a.png"
    # Given a key whose first version is recorded
    assert registry.claim_version(key, "v1", 10) is VersionClaim.FIRST
    # When S3 notifies about the same version again, it is the same file
    assert registry.claim_version(key, "v1", 10) is VersionClaim.FIRST
    # When a second version arrives (a replayed form), it is refused
    assert registry.claim_version(key, "v2", 99) is VersionClaim.SECOND
    # And the verdict is recorded once, for the first version only
    assert registry.record_verdict(key, "v2", "valid", None) is False
    assert registry.record_verdict(key, "v1", "rejected", "trailing-data") is True
    assert registry.record_verdict(key, "v1", "rejected", "trailing-data") is False
    assert registry.claim_version(key, "v1", 10) is VersionClaim.AGAIN


def test_a_rejected_files_stored_bytes_leave_the_usage_once(registry: Registry) -> None:
    registry.reserve(plan("k1", 10))
    reserved = registry.plan("k1")
    assert reserved is not None
    registry.settle(reserved, 10)
    settled = registry.plan("k1")
    assert settled is not None and settled.stored_bytes == 10
    assert registry.release_stored(settled) is True
    assert registry.release_stored(settled) is False
    assert registry.usage("alice").used_bytes == 0
    final = registry.plan("k1")
    assert final is not None and final.state is PlanState.REJECTED
