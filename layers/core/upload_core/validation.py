"""Validate new objects: read a bounded sample of the exact version, tag the verdict, quarantine rejects.

One S3 ObjectCreated record at a time, idempotently (S3 delivers at least once, sometimes twice,
and out of order):

- the version is gone (deleted, or already quarantined by an earlier delivery): nothing to do;
- the version is tagged ``valid``: nothing to do;
- the version is tagged ``rejected`` but still there (an earlier attempt stopped between tagging
  and moving it): finish the quarantine, nothing is inspected again;
- otherwise: inspect, tag, and quarantine a reject.

Bytes read per object are bounded whatever its size: INSPECT_HEAD_BYTES from the start, at most
INSPECT_MAX_HEAD_BYTES in all when the image header runs on (one second range request), and
INSPECT_TAIL_BYTES from the end.

Tags: the verdict's tags are merged into the version's existing set, which S3 replaces as a whole
and caps at 10. Tags written by others (a malware scanner, a lifecycle rule's filter) are never
dropped; when the set would overflow, the validator drops its own descriptive tags, least useful
first (frames, height, width, type, reason). ``upload-status`` is never dropped: if even it
does not fit, the version cannot be marked valid, stays unreadable (the bucket policy denies
reads without ``upload-status=valid``), and the outcome says so.

Quarantine: a reject is tagged first (so reads stay denied and a retry knows the verdict), then
copied to QUARANTINE_PREFIX + key with the merged tags and deleted by version id; or, with
QUARANTINE_ACTION=delete, just deleted. The quarantine prefix lies outside the validated
prefixes, so the copy triggers no validation. CopyObject copies at most 5 GiB in one request: a
larger reject is deleted instead of moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import S3Event

from upload_core.errors import InvalidRequest, NotFound
from upload_core.inspection import Sample, Verdict, inspect, needs_more_head
from upload_core.object_meta import REASON_TAG, STATUS_REJECTED, STATUS_TAG, STATUS_VALID
from upload_core.observability import logger, metrics, tracer
from upload_core.s3 import ObjectHead, S3Gateway
from upload_core.settings import GIB, Settings
from upload_core.validator_settings import QuarantineAction, ValidatorSettings

TYPE_TAG = "upload-type"
WIDTH_TAG = "upload-width"
HEIGHT_TAG = "upload-height"
FRAMES_TAG = "upload-frames"
# Most important first: when the tag set is full, the validator's tags are dropped from the end.
VERDICT_TAGS = (STATUS_TAG, REASON_TAG, TYPE_TAG, WIDTH_TAG, HEIGHT_TAG, FRAMES_TAG)
S3_MAX_TAGS = 10
S3_MAX_COPY_BYTES = 5 * GIB


class Action(StrEnum):
    """What validating one record did; logged, and returned for tests and the local stack."""

    TAGGED_VALID = "tagged-valid"
    QUARANTINED = "quarantined"
    DELETED = "deleted"
    ALREADY_DONE = "already-done"
    GONE = "gone"
    IGNORED = "ignored"
    # Valid, but its tag set is full of others' tags: left untagged, so unreadable.
    UNTAGGABLE = "untaggable"


class InvalidNotification(InvalidRequest):
    """The message is not an S3 event notification; it is retried and ends in the dead-letter queue."""

    code = "InvalidNotification"


class TagSetFull(Exception):
    """Other writers' tags leave no room for upload-status."""


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    version_id: str | None
    event_name: str


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    version_id: str | None
    action: Action
    verdict: Verdict | None = None
    bytes_read: int = 0


def parse_notification(body: Mapping[str, Any]) -> list[ObjectCreated]:
    """The ObjectCreated records of one S3 event notification.

    S3's test message (sent when a notification is configured) and records of other event types
    yield nothing. Keys arrive URL-encoded with '+' for spaces, as in an HTML form.
    """
    if body.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(body.get("Records"), list):
        raise InvalidNotification("not an S3 event notification")
    created: list[ObjectCreated] = []
    try:
        for record in S3Event(dict(body)).records:
            if record.event_source != "aws:s3" or not record.event_name.removeprefix("s3:").startswith(
                "ObjectCreated:"
            ):
                continue
            s3_object = record.s3.get_object
            created.append(
                ObjectCreated(
                    bucket=record.s3.bucket.name,
                    key=unquote_plus(s3_object.key),
                    version_id=s3_object.version_id or None,
                    event_name=record.event_name,
                )
            )
    except (KeyError, TypeError, AttributeError) as error:
        raise InvalidNotification(f"malformed S3 event record: {error!r}") from error
    return created


def verdict_tags(verdict: Verdict) -> dict[str, str]:
    tags = {STATUS_TAG: verdict.status, REASON_TAG: verdict.reason.value}
    if verdict.image_type is not None:
        tags[TYPE_TAG] = verdict.image_type.mime
    if verdict.width is not None and verdict.height is not None:
        tags[WIDTH_TAG] = str(verdict.width)
        tags[HEIGHT_TAG] = str(verdict.height)
    if verdict.frames_label is not None:
        tags[FRAMES_TAG] = verdict.frames_label
    return tags


def merge_tags(existing: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """Others' tags kept as they are; ours replace our earlier ones and fill the room that is left."""
    foreign = {key: value for key, value in existing.items() if key not in VERDICT_TAGS}
    room = S3_MAX_TAGS - len(foreign)
    ordered = [key for key in VERDICT_TAGS if key in ours]
    if room < 1 or STATUS_TAG not in ours:
        raise TagSetFull(f"{len(foreign)} other tags leave no room for {STATUS_TAG}")
    return {**foreign, **{key: ours[key] for key in ordered[:room]}}


class ValidationService:
    def __init__(self, settings: Settings, config: ValidatorSettings, s3: S3Gateway | None = None) -> None:
        self._settings = settings
        self._config = config
        self._s3 = s3 or S3Gateway(settings)

    def handle_notification(self, body: Mapping[str, Any]) -> list[Outcome]:
        """Every ObjectCreated record of one notification; an error in one fails the whole message."""
        return [self.validate(record) for record in parse_notification(body)]

    # The response holds object keys (user file names): kept out of trace metadata.
    @tracer.capture_method(capture_response=False)
    def validate(self, record: ObjectCreated) -> Outcome:
        log = {"key": record.key, "version_id": record.version_id, "event": record.event_name}
        if record.bucket != self._settings.bucket_name or not self._config.is_validated(record.key):
            logger.warning("record outside the validated bucket and prefixes, ignored", extra=log)
            return self._report(Outcome(record.key, record.version_id, Action.IGNORED))
        try:
            outcome = self._validate(record.key, record.version_id)
        except NotFound:
            # Deleted between two of our calls: as final as being gone before the first one.
            outcome = Outcome(record.key, record.version_id, Action.GONE)
        return self._report(outcome)

    def _validate(self, key: str, version_id: str | None) -> Outcome:
        head = self._s3.head_object(key, version_id)
        if head is None:
            return Outcome(key, version_id, Action.GONE)
        tags = self._s3.get_tags(key, version_id)
        status = tags.get(STATUS_TAG)
        if status == STATUS_VALID:
            return Outcome(key, version_id, Action.ALREADY_DONE)
        if status == STATUS_REJECTED:
            return Outcome(key, version_id, self._quarantine(key, version_id, head, tags))
        sample, bytes_read = self._sample(key, version_id, head)
        verdict = inspect(sample, self._config.limits)
        try:
            merged = merge_tags(tags, verdict_tags(verdict))
        except TagSetFull:
            if verdict.valid:
                return Outcome(key, version_id, Action.UNTAGGABLE, verdict, bytes_read)
            # A reject leaves its upload key all the same, keeping the tags it has.
            return Outcome(key, version_id, self._quarantine(key, version_id, head, tags), verdict, bytes_read)
        self._s3.put_tags(key, merged, version_id)
        if verdict.valid:
            return Outcome(key, version_id, Action.TAGGED_VALID, verdict, bytes_read)
        action = self._quarantine(key, version_id, head, merged)
        return Outcome(key, version_id, action, verdict, bytes_read)

    def _sample(self, key: str, version_id: str | None, head: ObjectHead) -> tuple[Sample, int]:
        """The bounded bytes inspection needs: a prefix, maybe a longer prefix, and the tail."""
        size = head.size
        filename = key.rsplit("/", 1)[-1]
        if size <= 0 or size > self._config.limits.max_object_bytes:
            return Sample(b"", b"", size, head.content_type, filename), 0
        prefix = self._read(key, version_id, 0, min(size, self._config.head_bytes))
        limit = min(size, self._config.max_head_bytes)
        if len(prefix) < limit and needs_more_head(prefix, size):
            prefix += self._read(key, version_id, len(prefix), limit)
        bytes_read = len(prefix)
        if len(prefix) >= size:
            tail = prefix[-self._config.tail_bytes :]
        else:
            tail = self._read(key, version_id, max(len(prefix), size - self._config.tail_bytes), size)
            bytes_read += len(tail)
        return Sample(prefix, tail, size, head.content_type, filename), bytes_read

    def _read(self, key: str, version_id: str | None, start: int, end: int) -> bytes:
        """Bytes start..end-1, also from a server that ignores Range and sends the whole object.

        S3 honours Range; MiniStack 1.5 (the local stack's S3) ignores it on GETs that name a
        version. Slicing keeps the verdict right there, at the cost of the transfer.
        """
        data = self._s3.get_range(key, start, end - 1, version_id)
        if len(data) > end - start:
            logger.warning("the storage server ignored a Range request", extra={"key": key, "sent": len(data)})
            data = data[start:end]
        return data

    def _quarantine(self, key: str, version_id: str | None, head: ObjectHead, tags: Mapping[str, str]) -> Action:
        if self._config.quarantine_action is QuarantineAction.MOVE and head.size <= S3_MAX_COPY_BYTES:
            self._s3.copy_object(key, self._config.quarantine_key(key), source_version_id=version_id, tags=tags)
            action = Action.QUARANTINED
        else:
            action = Action.DELETED
        # By version id: the rejected bytes are removed, not hidden behind a delete marker.
        self._s3.delete_object(key, version_id)
        return action

    def _report(self, outcome: Outcome) -> Outcome:
        verdict = outcome.verdict
        fields: dict[str, Any] = {
            "key": outcome.key,
            "version_id": outcome.version_id,
            "action": outcome.action.value,
            "bytes_read": outcome.bytes_read,
        }
        if verdict is not None:
            fields.update(
                status=verdict.status,
                reason=verdict.reason.value,
                type=verdict.image_type.mime if verdict.image_type else None,
                width=verdict.width,
                height=verdict.height,
                frames=verdict.frames_label,
            )
            with single_metric(
                name="Verdicts", unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions
            ) as metric:
                metric.add_dimension(name="status", value=verdict.status)
                metric.add_dimension(name="reason", value=verdict.reason.value)
            metrics.add_metric(name="InspectedBytes", unit=MetricUnit.Bytes, value=outcome.bytes_read)
        metrics.add_metric(name=_ACTION_METRICS[outcome.action], unit=MetricUnit.Count, value=1)
        if outcome.action is Action.UNTAGGABLE:
            logger.error("valid object not tagged: its tag set is full, it stays unreadable", extra=fields)
        else:
            logger.info("validation outcome", extra=fields)
        return outcome


_ACTION_METRICS = {
    Action.TAGGED_VALID: "ObjectsValid",
    Action.QUARANTINED: "ObjectsQuarantined",
    Action.DELETED: "ObjectsDeleted",
    Action.ALREADY_DONE: "DuplicateEvents",
    Action.GONE: "ObjectsGone",
    Action.IGNORED: "RecordsIgnored",
    Action.UNTAGGABLE: "ObjectsUntaggable",
}
