"""Retry policy: exponential backoff with full jitter, Retry-After as a floor, no real sleeping."""

from __future__ import annotations

import pytest

from client.errors import ApiUnreachable, TransferError
from client.retry import RetryPolicy, Transient, call_with_retries, retry_after_seconds


def test_the_ceiling_doubles_per_retry_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, random=lambda: 1.0)
    assert [policy.delay(attempt) for attempt in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    assert RetryPolicy(base_delay=1.0, random=lambda: 0.0).delay(3) == 0.0
    assert RetryPolicy(base_delay=1.0, random=lambda: 0.25).delay(3) == 2.0


def test_retry_after_is_a_floor_but_still_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, random=lambda: 0.0)
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=3600.0) == 10.0
    assert RetryPolicy(base_delay=1.0, random=lambda: 1.0).delay(2, retry_after=0.5) == 4.0


def test_a_huge_attempt_number_does_not_overflow() -> None:
    assert RetryPolicy(max_delay=20.0, random=lambda: 1.0).delay(10_000) == 20.0


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)


def test_transient_failures_are_retried_until_success() -> None:
    # Given an operation that fails twice, then succeeds
    outcomes: list[object] = [Transient(ApiUnreachable("down")), Transient(ApiUnreachable("down")), "ok"]
    sleeps: list[float] = []
    notices: list[tuple[int, float]] = []

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    # When it is called with retries
    policy = RetryPolicy(retries=5, base_delay=1.0, random=lambda: 0.5)
    result = call_with_retries(attempt, policy, sleeps.append, on_retry=lambda n, _t, wait: notices.append((n, wait)))
    # Then it waited before each retry, with growing ceilings
    assert result == "ok"
    assert sleeps == [0.5, 1.0]
    assert notices == [(1, 0.5), (2, 1.0)]


def test_after_the_last_retry_the_final_error_is_raised() -> None:
    sleeps: list[float] = []
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Transient(TransferError(f"failure {calls}"), retry_after=2.0)

    with pytest.raises(TransferError, match="failure 3"):
        call_with_retries(attempt, RetryPolicy(retries=2, random=lambda: 0.0), sleeps.append)
    assert calls == 3
    assert sleeps == [2.0, 2.0]


def test_other_errors_are_not_retried() -> None:
    sleeps: list[float] = []

    def attempt() -> None:
        raise TransferError("refused")

    with pytest.raises(TransferError, match="refused"):
        call_with_retries(attempt, RetryPolicy(), sleeps.append)
    assert sleeps == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({}, None),
        ({"Retry-After": "-1"}, None),
    ],
)
def test_retry_after_in_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected
