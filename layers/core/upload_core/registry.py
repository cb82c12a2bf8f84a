"""The registry: the product's memory in one DynamoDB table, so what a client declared binds.

Items (one table, ``pk``/``sk`` strings):

- ``PLAN#<key>`` / ``PLAN``: one upload's plan (owner, declared size, reservation, part plan,
  state, expiry). Keys are unique per upload, so the key names the plan. While a plan holds a
  reservation (states ``creating`` and ``open``) it carries ``openShard``/``openUntil``, the keys of
  the sparse ``OpenPlans`` index the sweeper queries; settling or releasing removes them.
- ``OWNER#<owner>`` / ``USAGE``: bytes stored and reserved (``usedBytes`` is their sum, kept as
  one attribute because a condition expression cannot add), uploads in flight, and optional
  per-owner overrides ``quotaBytes`` and ``maxUploads``.
- ``OWNER#<owner>`` / ``RATE#<minute>``: requests counted in one minute (expire by TTL).
- ``OWNER#<owner>`` / ``FILE#<fileId>``: one of the owner's files (key, name, size, type, version,
  status, reason), written when its object arrives and updated by the verdict. It carries
  ``filesOrder`` (``<createdAt ms>#<fileId>``), the sort key of the sparse ``OwnerFiles`` index
  (partition ``pk``), so an owner's files list newest first from one partition; a deleted file
  keeps its item without ``filesOrder`` (a tombstone: a second delete is still a 204).

Every change of usage is one conditional write or one transaction with the plan's state change,
so a reservation is made once, settled or released once, and 50 racing creates cannot overshoot.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from upload_core.errors import TooLarge, TooManyRequests, UploadError, UpstreamError
from upload_core.settings import Settings

OPEN_PLANS_INDEX = "OpenPlans"
OWNER_FILES_INDEX = "OwnerFiles"
# The sparse index's partition: few writes per second each, spread over shards.
_OPEN_SHARDS = 4
RATE_WINDOW_SECONDS = 60
# Plans one reserve_all records: a DynamoDB transaction holds 100 items, the usage is one of them.
MAX_PLANS_AT_ONCE = 99


class VersionClaim(StrEnum):
    FIRST = "first"  # the first version stored under the key: this one is the file
    AGAIN = "again"  # the same version seen before (S3 notified twice)
    SECOND = "second"  # another version under a key that already has one: never to be served


class PlanState(StrEnum):
    CREATING = "creating"  # reserved; the S3 upload (or form) is being made
    OPEN = "open"  # parts (or the form's object) may be stored
    COMPLETED = "completed"  # settled: the reservation became stored bytes
    ABORTED = "aborted"
    EXPIRED = "expired"
    REFUSED = "refused"  # the stored bytes broke the plan; the upload was aborted
    REJECTED = "rejected"  # stored, then rejected by the validator: its bytes left the usage
    DELETED = "deleted"  # stored, then deleted by its owner: its bytes left the usage


class PlanKind(StrEnum):
    MULTIPART = "multipart"  # native: declared size, exact part lengths signed
    UNDECLARED = "undeclared"  # Companion / Uppy: the client picks part sizes; bound at complete
    FORM = "form"  # presigned POST: the policy binds the size
    IMPORT = "import"  # a remote import: at most ImportMaxBytes, settled with what was stored


@dataclass(frozen=True, slots=True)
class UploadPlan:
    key: str
    owner: str
    kind: PlanKind
    reserved_bytes: int
    created_at: int
    expires_at: int
    state: PlanState = PlanState.CREATING
    declared_size: int | None = None
    part_size: int | None = None
    part_count: int | None = None
    content_type: str = ""
    checksum_algorithm: str | None = None
    upload_id: str | None = None
    stored_bytes: int | None = None

    @property
    def holds_reservation(self) -> bool:
        return self.state in (PlanState.CREATING, PlanState.OPEN)

    def part_length(self, part_number: int) -> int | None:
        """The exact length of one part of a declared upload (the last one its remainder)."""
        if self.declared_size is None or self.part_size is None or self.part_count is None:
            return None
        if part_number < self.part_count:
            return self.part_size
        return self.declared_size - self.part_size * (self.part_count - 1)


class FileStatus(StrEnum):
    PENDING = "pending"
    VALID = "valid"
    REJECTED = "rejected"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One of an owner's files, as the registry knows it."""

    owner: str
    file_id: str
    key: str
    name: str
    size: int
    content_type: str
    version_id: str
    status: FileStatus
    created_at_ms: int
    reason: str | None = None

    @property
    def order(self) -> str:
        return file_order(self.created_at_ms, self.file_id)


def file_order(created_at_ms: int, file_id: str) -> str:
    """The listing's sort key: newest first is a descending query on it."""
    return f"{created_at_ms:015d}#{file_id}"


@dataclass(frozen=True, slots=True)
class FilesPage:
    files: list[FileRecord]
    # The last listed file's order, when more may follow.
    next_after: str | None


@dataclass(frozen=True, slots=True)
class Usage:
    owner: str
    stored_bytes: int
    reserved_bytes: int
    uploads_in_flight: int
    quota_bytes: int
    max_uploads: int

    @property
    def used_bytes(self) -> int:
        return self.stored_bytes + self.reserved_bytes

    def as_dict(self) -> dict[str, int]:
        return {
            "storedBytes": self.stored_bytes,
            "reservedBytes": self.reserved_bytes,
            "usedBytes": self.used_bytes,
            "quotaBytes": self.quota_bytes,
            "uploadsInFlight": self.uploads_in_flight,
            "maxUploads": self.max_uploads,
        }


@dataclass(frozen=True, slots=True)
class UsageDefaults:
    quota_bytes: int
    max_uploads: int


class QuotaExceeded(TooLarge):
    code = "QuotaExceeded"


class RegistryError(UpstreamError):
    code = "RegistryUnavailable"


def registry_error(error: ClientError | BotoCoreError) -> UploadError:
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ):
        return TooManyRequests("the registry is busy; retry shortly", retry_after_seconds=1, code="RegistryBusy")
    return RegistryError("the upload registry could not be reached")


def build_registry_client(region: str) -> Any:
    # The endpoint comes from AWS_ENDPOINT_URL_DYNAMODB when set (the local stack sets it).
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=5)
    return boto3.client("dynamodb", region_name=region, config=config)


def registry_for(settings: Settings, clock: Callable[[], float] = time.time) -> Registry:
    """The registry the settings name, with their default per-owner limits."""
    return Registry(
        settings.registry_table,
        UsageDefaults(quota_bytes=settings.default_user_quota_bytes, max_uploads=settings.max_concurrent_uploads),
        region=settings.region,
        clock=clock,
    )


class Registry:
    def __init__(
        self,
        table_name: str,
        defaults: UsageDefaults,
        *,
        region: str = "us-east-1",
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._defaults = defaults
        self._region = region
        self._client = client
        self._clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = build_registry_client(self._region)
        return self._client

    def now(self) -> int:
        return int(self._clock())

    # --- usage -----------------------------------------------------------------------------------
    def usage(self, owner: str) -> Usage:
        item = self._get(_owner_pk(owner), "USAGE")
        return self._usage_of(owner, item or {})

    def set_limits(self, owner: str, *, quota_bytes: int | None, max_uploads: int | None) -> None:
        """Per-owner overrides of the defaults (None removes an override)."""
        sets, removes, values = [], [], {}
        for attribute, value in (("quotaBytes", quota_bytes), ("maxUploads", max_uploads)):
            if value is None:
                removes.append(attribute)
            else:
                sets.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = _n(value)
        expression = " ".join(
            part
            for part in (f"SET {', '.join(sets)}" if sets else "", f"REMOVE {', '.join(removes)}" if removes else "")
        )
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(_owner_pk(owner), "USAGE"),
            "UpdateExpression": expression,
        }
        if values:
            params["ExpressionAttributeValues"] = values
        self._call("update_item", **params)

    def _usage_of(self, owner: str, item: Mapping[str, Any]) -> Usage:
        return Usage(
            owner=owner,
            stored_bytes=_int(item, "storedBytes"),
            reserved_bytes=_int(item, "reservedBytes"),
            uploads_in_flight=_int(item, "inflight"),
            quota_bytes=_int(item, "quotaBytes", self._defaults.quota_bytes),
            max_uploads=_int(item, "maxUploads", self._defaults.max_uploads),
        )

    # --- request rate ----------------------------------------------------------------------------
    def count_request(self, owner: str, per_minute: int, count: int = 1) -> None:
        """Count ``count`` requests (a batch counts each of its files) against the owner's rate,
        all or none; 429 with Retry-After when they do not fit in this minute."""
        now = self.now()
        window = now - now % RATE_WINDOW_SECONDS
        counted = count <= per_minute and self._conditional_update(
            Key=_key(_owner_pk(owner), f"RATE#{window}"),
            UpdateExpression="ADD requests :count SET #ttl = :ttl",
            ConditionExpression="attribute_not_exists(requests) OR requests <= :before",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":count": _n(count),
                ":before": _n(per_minute - count),
                ":ttl": _n(window + 2 * RATE_WINDOW_SECONDS),
            },
        )
        if not counted:
            retry_after = max(1, window + RATE_WINDOW_SECONDS - now)
            asked = "" if count == 1 else f" ({count} asked at once)"
            raise TooManyRequests(
                f"more than {per_minute} requests in a minute{asked}; retry in {retry_after} s",
                retry_after_seconds=retry_after,
                code="TooManyRequests",
            )

    # --- plans -----------------------------------------------------------------------------------
    def reserve(self, plan: UploadPlan) -> UploadPlan:
        """Record the plan and reserve its bytes and one upload slot, atomically and only within
        the owner's quota and in-flight limit. Raises QuotaExceeded (413) or TooManyRequests (429)."""
        return self.reserve_all([plan])[0]

    def reserve_all(self, plans: Sequence[UploadPlan]) -> list[UploadPlan]:
        """Record one owner's plans and reserve their bytes and one upload slot each, in one
        transaction: all of them within the owner's quota and in-flight limit, or none (413
        QuotaExceeded, 429 TooManyUploads). At most MAX_PLANS_AT_ONCE plans (a transaction holds
        100 items: the plans and the usage)."""
        if not plans or len(plans) > MAX_PLANS_AT_ONCE or len({plan.owner for plan in plans}) != 1:
            raise ValueError(f"reserve_all takes 1 to {MAX_PLANS_AT_ONCE} plans of one owner")
        owner = plans[0].owner
        size = sum(plan.reserved_bytes for plan in plans)
        for _ in range(3):  # a concurrent change of the owner's usage is the only reason to retry
            usage = self.usage(owner)
            self._check_fits(usage, size, slots=len(plans))
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        *({"Put": self._put_plan(plan, condition="attribute_not_exists(pk)")} for plan in plans),
                        {"Update": self._reserve_update(usage, size, slots=len(plans))},
                    ]
                )
            except ClientError as error:
                if _error_code(error) != "TransactionCanceledException":
                    raise registry_error(error) from error
                if any(_cancelled_on(error, index) for index in range(len(plans))):
                    raise UpstreamError("a plan for this key already exists", code="PlanExists") from None
                continue  # usage moved under us: read it again and decide again
            except BotoCoreError as error:
                raise registry_error(error) from error
            return list(plans)
        raise TooManyRequests(
            "too many simultaneous changes to your usage; retry", retry_after_seconds=1, code="TooManyRequests"
        )

    def _check_fits(self, usage: Usage, size: int, *, slots: int = 1) -> None:
        if usage.uploads_in_flight + slots > usage.max_uploads:
            asked = "" if slots == 1 else f" and ask for {slots} more"
            raise TooManyRequests(
                f"you have {usage.uploads_in_flight} uploads in flight{asked}, the limit is {usage.max_uploads};"
                " complete or abort one first",
                retry_after_seconds=60,
                code="TooManyUploads",
                details={"usage": usage.as_dict()},
            )
        if usage.used_bytes + size > usage.quota_bytes:
            raise QuotaExceeded(
                f"this upload needs {size} bytes but only {max(0, usage.quota_bytes - usage.used_bytes)}"
                f" of your {usage.quota_bytes}-byte quota are free",
                details={"usage": usage.as_dict(), "limit": usage.quota_bytes, "requested": size},
            )

    def _reserve_update(self, usage: Usage, size: int, *, slots: int = 1) -> dict[str, Any]:
        # The condition restates the check just made, against the values it was made on: the
        # override (or its absence) and the used bytes and slots. Arithmetic happens here, not
        # in DynamoDB, which cannot add inside a condition.
        values: dict[str, Any] = {
            ":size": _n(size),
            ":slots": _n(slots),
            ":max_used": _n(usage.quota_bytes - size),
            ":max_inflight": _n(usage.max_uploads - slots),
        }
        conditions = [
            "(attribute_not_exists(usedBytes) OR usedBytes <= :max_used)",
            "(attribute_not_exists(inflight) OR inflight <= :max_inflight)",
        ]
        for attribute, value, default in (
            ("quotaBytes", usage.quota_bytes, self._defaults.quota_bytes),
            ("maxUploads", usage.max_uploads, self._defaults.max_uploads),
        ):
            values[f":{attribute}"] = _n(value)
            if value == default:
                conditions.append(f"(attribute_not_exists({attribute}) OR {attribute} = :{attribute})")
            else:
                conditions.append(f"{attribute} = :{attribute}")
        return {
            "TableName": self._table,
            "Key": _key(_owner_pk(usage.owner), "USAGE"),
            "UpdateExpression": "ADD usedBytes :size, reservedBytes :size, inflight :slots",
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }

    def open(self, key: str, upload_id: str | None) -> None:
        """The S3 side exists now: the plan is open (and knows its upload id)."""
        values: dict[str, Any] = {":creating": _s(PlanState.CREATING), ":open": _s(PlanState.OPEN)}
        expression = "SET #state = :open"
        if upload_id is not None:
            expression += ", uploadId = :upload"
            values[":upload"] = _s(upload_id)
        self._call(
            "update_item",
            TableName=self._table,
            Key=_key(_plan_pk(key), "PLAN"),
            UpdateExpression=expression,
            ConditionExpression="#state = :creating",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def plan(self, key: str) -> UploadPlan | None:
        item = self._get(_plan_pk(key), "PLAN")
        return _plan_of(item) if item else None

    def settle(self, plan: UploadPlan, stored_bytes: int) -> bool:
        """The upload is stored: its reservation becomes ``stored_bytes`` of stored usage.
        False when it was settled or released before (idempotent)."""
        return self._finish(plan, PlanState.COMPLETED, stored_bytes)

    def release(self, plan: UploadPlan, state: PlanState) -> bool:
        """Give the reservation back (abort, expiry, refusal). False when already finished."""
        if state in (PlanState.CREATING, PlanState.OPEN, PlanState.COMPLETED):
            raise ValueError(f"release() ends a plan; {state} does not")
        return self._finish(plan, state, 0)

    def _finish(self, plan: UploadPlan, state: PlanState, stored_bytes: int) -> bool:
        return self._transaction(
            self._plan_transition(
                plan,
                state,
                "#state IN (:creating, :open)",
                also_set="storedBytes = :stored",
                remove="REMOVE openShard, openUntil",
                values={":stored": _n(stored_bytes), ":creating": _s(PlanState.CREATING), ":open": _s(PlanState.OPEN)},
            ),
            self._usage_change(
                plan.owner,
                used=stored_bytes - plan.reserved_bytes,
                reserved=-plan.reserved_bytes,
                stored=stored_bytes,
                inflight=-1,
            ),
        )

    def release_stored(self, plan: UploadPlan, state: PlanState = PlanState.REJECTED) -> bool:
        """A settled plan's stored bytes leave the owner's usage (the file was rejected or
        deleted), once: False when they already had."""
        return self._transaction(
            self._plan_transition(plan, state, "#state = :completed", values={":completed": _s(PlanState.COMPLETED)}),
            self._usage_change(plan.owner, used=-(plan.stored_bytes or 0), stored=-(plan.stored_bytes or 0)),
        )

    def open_plans(self, *, expired_before: int | None = None) -> Iterator[UploadPlan]:
        """Plans that still hold a reservation (only those whose time is up when
        ``expired_before`` is given), from the sparse index, every page."""
        for shard in range(_OPEN_SHARDS):
            params: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": OPEN_PLANS_INDEX,
                "KeyConditionExpression": "openShard = :shard"
                + (" AND openUntil < :before" if expired_before is not None else ""),
                "ExpressionAttributeValues": {":shard": _s(str(shard))},
            }
            if expired_before is not None:
                params["ExpressionAttributeValues"][":before"] = _n(expired_before)
            while True:
                page = self._call("query", **params)
                for item in page.get("Items", []):
                    # The index projects keys only on purpose (cheap writes): read the plan itself.
                    plan = self.plan(item["pk"]["S"].removeprefix("PLAN#"))
                    if plan is not None and plan.holds_reservation:
                        yield plan
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- files ------------------------------------------------------------------------------------
    def claim_version(self, key: str, version_id: str, size: int) -> VersionClaim:
        """Record ``version_id`` as the one version of ``key``, unless another version holds it.

        A key's content must never change once stored (a replayed form, a second PUT): the
        first version to be recorded is the file, any other is refused by the caller."""
        claimed = self._conditional_update(
            Key=_key(_file_pk(key), "VERSION"),
            UpdateExpression="SET #key = :key, versionId = :version, #size = :size,"
            " createdAt = if_not_exists(createdAt, :now), #status = if_not_exists(#status, :pending)",
            ConditionExpression="attribute_not_exists(versionId) OR versionId = :version",
            ExpressionAttributeNames={"#key": "key", "#size": "size", "#status": "status"},
            ExpressionAttributeValues={
                ":key": _s(key),
                ":version": _s(version_id),
                ":size": _n(size),
                ":now": _n(self.now()),
                ":pending": _s("pending"),
            },
        )
        if not claimed:
            return VersionClaim.SECOND
        # Redelivered after the verdict was recorded: nothing is left to do for this version.
        item = self._get(_file_pk(key), "VERSION") or {}
        return VersionClaim.AGAIN if item.get("verdictAt") else VersionClaim.FIRST

    def record_verdict(
        self, key: str, version_id: str, status: str, reason: str | None, *, event: str | None = None
    ) -> bool:
        """Record the validator's verdict on the file's version, once: True only for the call
        that recorded it (so usage is released once). ``event``, the verdict's event, is kept
        with it as pending until ``event_published``: see ``claim_event``."""
        values: dict[str, Any] = {
            ":status": _s(status),
            ":version": _s(version_id),
            ":now": _n(self.now()),
        }
        expression = "SET #status = :status, verdictAt = :now"
        if reason:
            expression += ", reason = :reason"
            values[":reason"] = _s(reason)
        if event is not None:
            expression += ", pendingEvent = :event"
            values[":event"] = _s(event)
        return self._conditional_update(
            Key=_key(_file_pk(key), "VERSION"),
            UpdateExpression=expression,
            ConditionExpression="versionId = :version AND attribute_not_exists(verdictAt)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def claim_event(self, key: str, version_id: str, *, lease_seconds: int) -> str | None:
        """The version's verdict event still waiting to be published, claimed for
        ``lease_seconds`` so that a duplicate notification handled meanwhile does not publish it
        too; None when there is none (published already, never had one) or another call holds it.
        The claim ends with ``event_published``, ``release_event``, or when its lease runs out
        (the claimant died: the message's redelivery then takes it)."""
        now = self.now()
        try:
            answer = self.client.update_item(
                TableName=self._table,
                Key=_key(_file_pk(key), "VERSION"),
                UpdateExpression="SET eventClaimedUntil = :until",
                ConditionExpression="versionId = :version AND attribute_exists(pendingEvent)"
                " AND (attribute_not_exists(eventClaimedUntil) OR eventClaimedUntil < :now)",
                ExpressionAttributeValues={
                    ":version": _s(version_id),
                    ":now": _n(now),
                    ":until": _n(now + lease_seconds),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return None
            raise registry_error(error) from error
        except BotoCoreError as error:
            raise registry_error(error) from error
        return str(answer["Attributes"]["pendingEvent"]["S"])

    def event_published(self, key: str, version_id: str) -> bool:
        """The claimed event reached the bus: it is no longer pending (False if it was not)."""
        return self._conditional_update(
            Key=_key(_file_pk(key), "VERSION"),
            UpdateExpression="SET eventPublishedAt = :now REMOVE pendingEvent, eventClaimedUntil",
            ConditionExpression="versionId = :version AND attribute_exists(pendingEvent)",
            ExpressionAttributeValues={":version": _s(version_id), ":now": _n(self.now())},
        )

    def release_event(self, key: str, version_id: str) -> bool:
        """Give a claimed event back unpublished, for the next delivery to publish at once."""
        return self._conditional_update(
            Key=_key(_file_pk(key), "VERSION"),
            UpdateExpression="REMOVE eventClaimedUntil",
            ConditionExpression="versionId = :version AND attribute_exists(pendingEvent)",
            ExpressionAttributeValues={":version": _s(version_id)},
        )

    # --- the owner's files ------------------------------------------------------------------------
    def record_file(self, record: FileRecord) -> bool:
        """The owner's file item, written once when its object arrives (False when it exists)."""
        item: dict[str, Any] = {
            **_key(_owner_pk(record.owner), _file_sk(record.file_id)),
            "key": _s(record.key),
            "name": _s(record.name),
            "size": _n(record.size),
            "contentType": _s(record.content_type),
            "versionId": _s(record.version_id),
            "status": _s(record.status),
            "createdAtMs": _n(record.created_at_ms),
            "filesOrder": _s(record.order),
        }
        if record.reason:
            item["reason"] = _s(record.reason)
        try:
            self.client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise registry_error(error) from error
        except BotoCoreError as error:
            raise registry_error(error) from error
        return True

    def set_file_status(
        self, owner: str, file_id: str, status: FileStatus, reason: str | None, *, content_type: str | None = None
    ) -> bool:
        """The verdict on a file that is still listed (a deleted file stays deleted)."""
        values: dict[str, Any] = {":status": _s(status)}
        expression = "SET #status = :status"
        if content_type:
            expression += ", contentType = :type"
            values[":type"] = _s(content_type)
        if reason:
            expression += ", reason = :reason"
            values[":reason"] = _s(reason)
        return self._conditional_update(
            Key=_key(_owner_pk(owner), _file_sk(file_id)),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(filesOrder)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def forget_file(self, owner: str, file_id: str) -> bool:
        """Mark the file deleted and drop it from the listing; False when it already was."""
        return self._conditional_update(
            Key=_key(_owner_pk(owner), _file_sk(file_id)),
            UpdateExpression="SET #status = :deleted REMOVE filesOrder",
            ConditionExpression="attribute_exists(filesOrder)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":deleted": _s(FileStatus.DELETED)},
        )

    def file(self, owner: str, file_id: str) -> FileRecord | None:
        """The owner's file (deleted ones too): only the owner's partition is ever read."""
        item = self._get(_owner_pk(owner), _file_sk(file_id))
        return _file_of(owner, item) if item else None

    def files(self, owner: str, *, limit: int, after: str | None = None, status: FileStatus | None = None) -> FilesPage:
        """The owner's listed files, newest first, ``limit`` at most, after the order ``after``.

        The index is eventually consistent: a file written a moment ago may be missing for a moment."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OWNER_FILES_INDEX,
            "KeyConditionExpression": "pk = :pk" + (" AND filesOrder < :after" if after else ""),
            "ExpressionAttributeValues": {":pk": _s(_owner_pk(owner))},
            "ScanIndexForward": False,
        }
        if after:
            params["ExpressionAttributeValues"][":after"] = _s(after)
        if status is not None:
            params["FilterExpression"] = "#status = :status"
            params["ExpressionAttributeNames"] = {"#status": "status"}
            params["ExpressionAttributeValues"][":status"] = _s(status)
        found: list[FileRecord] = []
        while True:
            # A filter applies after Limit: page on until the page is full or the partition ends.
            page = self._call("query", **params, Limit=limit + 1)
            for item in page.get("Items", []):
                if len(found) == limit:
                    return FilesPage(found, found[-1].order)  # one more exists
                found.append(_file_of(owner, item))
            if "LastEvaluatedKey" not in page:
                return FilesPage(found, None)
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- plumbing --------------------------------------------------------------------------------
    def _conditional_update(self, **params: Any) -> bool:
        """One conditional UpdateItem: False when its condition did not hold."""
        try:
            self.client.update_item(TableName=self._table, **params)
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise registry_error(error) from error
        except BotoCoreError as error:
            raise registry_error(error) from error
        return True

    def _transaction(self, *updates: dict[str, Any]) -> bool:
        """Updates applied together or not at all: False when the first one's condition (the
        plan's state change) did not hold, i.e. the change happened before."""
        try:
            self.client.transact_write_items(TransactItems=[{"Update": update} for update in updates])
        except ClientError as error:
            if _error_code(error) == "TransactionCanceledException" and _cancelled_on(error, 0):
                return False
            raise registry_error(error) from error
        except BotoCoreError as error:
            raise registry_error(error) from error
        return True

    def _plan_transition(
        self,
        plan: UploadPlan,
        state: PlanState,
        condition: str,
        *,
        also_set: str = "",
        remove: str = "",
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The plan's move to ``state`` when ``condition`` holds (its current state)."""
        assignments = ", ".join(part for part in ("#state = :state", "finishedAt = :now", also_set) if part)
        return {
            "TableName": self._table,
            "Key": _key(_plan_pk(plan.key), "PLAN"),
            "UpdateExpression": f"SET {assignments} {remove}".strip(),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":state": _s(state), ":now": _n(self.now()), **(values or {})},
        }

    def _usage_change(self, owner: str, **deltas: int) -> dict[str, Any]:
        """Add ``deltas`` (used, reserved, stored, inflight) to the owner's usage."""
        attributes = {"used": "usedBytes", "reserved": "reservedBytes", "stored": "storedBytes", "inflight": "inflight"}
        return {
            "TableName": self._table,
            "Key": _key(_owner_pk(owner), "USAGE"),
            "UpdateExpression": "ADD " + ", ".join(f"{attributes[name]} :{name}" for name in deltas),
            "ExpressionAttributeValues": {f":{name}": _n(value) for name, value in deltas.items()},
        }

    def _put_plan(self, plan: UploadPlan, *, condition: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_key(_plan_pk(plan.key), "PLAN"),
            "key": _s(plan.key),
            "owner": _s(plan.owner),
            "kind": _s(plan.kind),
            "state": _s(plan.state),
            "reservedBytes": _n(plan.reserved_bytes),
            "createdAt": _n(plan.created_at),
            "expiresAt": _n(plan.expires_at),
            "contentType": _s(plan.content_type),
        }
        if plan.holds_reservation:
            item["openShard"] = _s(str(zlib.crc32(plan.key.encode()) % _OPEN_SHARDS))
            item["openUntil"] = _n(plan.expires_at)
        for attribute, value in (
            ("declaredSize", plan.declared_size),
            ("partSize", plan.part_size),
            ("partCount", plan.part_count),
        ):
            if value is not None:
                item[attribute] = _n(value)
        for attribute, text in (("checksumAlgorithm", plan.checksum_algorithm), ("uploadId", plan.upload_id)):
            if text:
                item[attribute] = _s(text)
        return {"TableName": self._table, "Item": item, "ConditionExpression": condition}

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call("get_item", TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return dict(item) if item else None

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(**params)
        except (ClientError, BotoCoreError) as error:
            raise registry_error(error) from error


def _plan_of(item: Mapping[str, Any]) -> UploadPlan:
    plan = UploadPlan(
        key=item["key"]["S"],
        owner=item["owner"]["S"],
        kind=PlanKind(item["kind"]["S"]),
        reserved_bytes=_int(item, "reservedBytes"),
        created_at=_int(item, "createdAt"),
        expires_at=_int(item, "expiresAt"),
        state=PlanState(item["state"]["S"]),
        content_type=item.get("contentType", {}).get("S", ""),
    )
    return replace(
        plan,
        declared_size=_optional_int(item, "declaredSize"),
        part_size=_optional_int(item, "partSize"),
        part_count=_optional_int(item, "partCount"),
        checksum_algorithm=item.get("checksumAlgorithm", {}).get("S"),
        upload_id=item.get("uploadId", {}).get("S"),
        stored_bytes=_optional_int(item, "storedBytes"),
    )


def _file_of(owner: str, item: Mapping[str, Any]) -> FileRecord:
    return FileRecord(
        owner=owner,
        file_id=item["sk"]["S"].removeprefix("FILE#"),
        key=item["key"]["S"],
        name=item["name"]["S"],
        size=_int(item, "size"),
        content_type=item.get("contentType", {}).get("S", ""),
        version_id=item.get("versionId", {}).get("S", ""),
        status=FileStatus(item["status"]["S"]),
        created_at_ms=_int(item, "createdAtMs"),
        reason=item.get("reason", {}).get("S"),
    )


def _file_sk(file_id: str) -> str:
    return f"FILE#{file_id}"


def _plan_pk(key: str) -> str:
    return f"PLAN#{key}"


def _file_pk(key: str) -> str:
    return f"FILE#{key}"


def _owner_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": _s(pk), "sk": _s(sk)}


def _s(value: str) -> dict[str, str]:
    return {"S": str(value)}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _int(item: Mapping[str, Any], attribute: str, default: int = 0) -> int:
    value = item.get(attribute)
    return int(value["N"]) if value else default


def _optional_int(item: Mapping[str, Any], attribute: str) -> int | None:
    value = item.get(attribute)
    return int(value["N"]) if value else None


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancelled_on(error: ClientError, index: int) -> bool:
    """Whether the transaction's item ``index`` failed its condition."""
    reasons = error.response.get("CancellationReasons") or []
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"
