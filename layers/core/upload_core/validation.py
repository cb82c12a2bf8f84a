"""Validate new objects: stream the exact version once, tag the verdict, quarantine rejects.

One S3 ObjectCreated record at a time (the handler parses events into :class:`ObjectCreated`),
idempotently (S3 delivers at least once, sometimes twice, and out of order):

- the version is gone (deleted, or already quarantined by an earlier delivery): nothing to do;
- the version is tagged ``valid``: nothing to do;
- the version is tagged ``rejected`` but still there (an earlier attempt stopped between tagging
  and moving it): finish the quarantine, nothing is inspected again;
- otherwise: inspect, tag, and quarantine a reject.

Each object is read once, by one GET of the exact version, in chunks that pass through the
format's structural walker and are dropped (memory stays flat whatever the size): a valid object
costs exactly its size in bytes read, a reject stops at its first bad byte.

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
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from upload_core.errors import NotFound
from upload_core.formats.errors import Reason
from upload_core.inspection import Verdict, inspect
from upload_core.keys import file_id_of
from upload_core.object_meta import REASON_TAG, STATUS_REJECTED, STATUS_TAG, STATUS_VALID
from upload_core.observability import logger, metrics, tracer
from upload_core.registry import FileRecord, FileStatus, PlanState, Registry, VersionClaim, registry_for
from upload_core.s3 import ObjectHead, S3Gateway
from upload_core.settings import GIB, Settings
from upload_core.validator_settings import QuarantineAction, ValidatorSettings
from upload_core.verdict_events import EventsUnavailable, VerdictEvent, VerdictPublisher, publisher_from_env

TYPE_TAG = "upload-type"
WIDTH_TAG = "upload-width"
HEIGHT_TAG = "upload-height"
FRAMES_TAG = "upload-frames"
# Most important first: when the tag set is full, the validator's tags are dropped from the end.
VERDICT_TAGS = (STATUS_TAG, REASON_TAG, TYPE_TAG, WIDTH_TAG, HEIGHT_TAG, FRAMES_TAG)
S3_MAX_TAGS = 10
S3_MAX_COPY_BYTES = 5 * GIB
# How long a validator call holds a verdict event it is publishing (PutEvents answers within
# seconds, with its retries): a call that dies holding it delays nothing, since the message comes
# back only after the queue's visibility timeout, far longer.
EVENT_CLAIM_SECONDS = 60
# Alarmed on in template.yaml (VerdictEventsFailingAlarm): applications miss verdicts while it rises.
EVENTS_FAILED_METRIC = "VerdictEventsFailed"
# Bytes per piece of the streamed GET: large enough that the walk runs in C most of the time,
# small against the 32 MiB memory budget.
READ_CHUNK_BYTES = 1 << 20


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


class TagSetFull(Exception):
    """Other writers' tags leave no room for upload-status."""


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """One ObjectCreated record, as plain values (the handler parses the event)."""

    bucket: str
    key: str  # decoded
    version_id: str | None
    event_name: str
    # The size the event announced; the object's own size (HeadObject) is what is judged.
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    version_id: str | None
    action: Action
    verdict: Verdict | None = None
    bytes_read: int = 0


def verdict_tags(verdict: Verdict) -> dict[str, str]:
    tags = {STATUS_TAG: verdict.status, REASON_TAG: verdict.reason.value}
    if verdict.image_type is not None:
        tags[TYPE_TAG] = verdict.image_type.mime
    if verdict.width is not None and verdict.height is not None:
        tags[WIDTH_TAG] = str(verdict.width)
        tags[HEIGHT_TAG] = str(verdict.height)
    if verdict.frames is not None:
        tags[FRAMES_TAG] = str(verdict.frames)
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
    def __init__(
        self,
        settings: Settings,
        config: ValidatorSettings,
        s3: S3Gateway | None = None,
        registry: Registry | None = None,
        events: VerdictPublisher | None = None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._s3 = s3 or S3Gateway(settings)
        self._registry = registry or registry_for(settings)
        self._events = events or publisher_from_env(settings.region)

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
        self._report(outcome)
        if record.version_id is not None:
            self._publish_pending(record.key, record.version_id)
        return outcome

    def _validate(self, key: str, version_id: str | None) -> Outcome:
        head = self._s3.head_object(key, version_id)
        if head is None:
            return Outcome(key, version_id, Action.GONE)
        if version_id is not None and self._registry.claim_version(key, version_id, head.size) is VersionClaim.SECOND:
            return self._refuse_second_version(key, version_id)
        plan = self._registry.plan(key)
        owner = plan.owner if plan is not None else None
        if owner is not None and version_id is not None:
            self._record_file(owner, key, version_id, head)
        outcome = self._judge(key, version_id, head)
        if outcome.action is not Action.GONE:
            self._settle_usage(key, valid=outcome.action in _STORED_ACTIONS, size=head.size)
        verdict = outcome.verdict
        if version_id is not None and verdict is not None:
            reason = None if verdict.valid else verdict.reason.value
            # The detected type, which downloads are served as; the declared one when none was.
            content_type = verdict.image_type.mime if verdict.image_type else head.content_type or ""
            event = (
                VerdictEvent(owner, file_id_of(key), key, version_id, head.size, content_type, verdict.valid, reason)
                if owner is not None
                else None
            )
            # Recorded once per version, with its event pending; validate() then publishes it.
            self._registry.record_verdict(
                key, version_id, verdict.status, verdict.reason.value, event=event.to_json() if event else None
            )
            if owner is not None:
                status = FileStatus.VALID if verdict.valid else FileStatus.REJECTED
                self._registry.set_file_status(owner, file_id_of(key), status, reason, content_type=content_type)
        return outcome

    def _record_file(self, owner: str, key: str, version_id: str, head: ObjectHead) -> None:
        """The owner's file item, listed as pending until the verdict (once per key)."""
        self._registry.record_file(
            FileRecord(
                owner=owner,
                file_id=file_id_of(key),
                key=key,
                name=key.rsplit("/", 1)[-1],
                size=head.size,
                content_type=head.content_type or "",
                version_id=version_id,
                status=FileStatus.PENDING,
                created_at_ms=self._registry.now() * 1000,
            )
        )

    def _publish_pending(self, key: str, version_id: str) -> None:
        """Publish the version's verdict event if it is still pending and no other call holds it.

        Runs on every delivery, whatever the object's state (judged now, judged before, already
        quarantined and gone), so the redelivery of a message whose event the bus refused
        publishes it without judging the object again; a duplicate finds nothing pending."""
        pending = self._registry.claim_event(key, version_id, lease_seconds=EVENT_CLAIM_SECONDS)
        if pending is None:
            return
        event = VerdictEvent.from_json(pending)
        try:
            self._events.publish(event)
        except EventsUnavailable:
            # The verdict stands (tags, registry); the event stays pending and the message fails,
            # so the queue delivers it again (then dead-letters it, alarmed on).
            logger.exception("verdict event not published", extra={"key": key, "version_id": version_id})
            metrics.add_metric(name=EVENTS_FAILED_METRIC, unit=MetricUnit.Count, value=1)
            self._registry.release_event(key, version_id)
            raise
        self._registry.event_published(key, version_id)
        metrics.add_metric(name="VerdictEvents", unit=MetricUnit.Count, value=1)

    def _refuse_second_version(self, key: str, version_id: str) -> Outcome:
        """Another version under a key that has its file: never served, never read, removed
        (by version id, so the file's own version stays the current one)."""
        self._s3.put_tags(key, {STATUS_TAG: STATUS_REJECTED, REASON_TAG: Reason.SECOND_VERSION.value}, version_id)
        self._s3.delete_object(key, version_id)
        return Outcome(key, version_id, Action.DELETED, Verdict(STATUS_REJECTED, Reason.SECOND_VERSION))

    def _settle_usage(self, key: str, *, valid: bool, size: int) -> None:
        """The verdict settles the key's plan: a form's reservation becomes stored bytes (or is
        released when rejected), a completed upload's stored bytes leave the usage when rejected.
        Each step happens once, however often the event is delivered."""
        plan = self._registry.plan(key)
        if plan is None:
            return  # no plan (an import, or an object older than the registry): nothing reserved
        if plan.holds_reservation:
            if valid:
                self._registry.settle(plan, size)
            else:
                self._registry.release(plan, PlanState.REFUSED)
        elif plan.state is PlanState.COMPLETED and not valid:
            self._registry.release_stored(plan)

    def _judge(self, key: str, version_id: str | None, head: ObjectHead) -> Outcome:
        tags = self._s3.get_tags(key, version_id)
        status = tags.get(STATUS_TAG)
        if status == STATUS_VALID:
            return Outcome(key, version_id, Action.ALREADY_DONE)
        if status == STATUS_REJECTED:
            return Outcome(key, version_id, self._quarantine(key, version_id, head, tags))
        verdict = self._inspect(key, version_id, head)
        bytes_read = verdict.bytes_read
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

    def _inspect(self, key: str, version_id: str | None, head: ObjectHead) -> Verdict:
        """One GET of the exact version, streamed through the inspection once; closed as soon as
        the verdict is known (a reject stops reading at its first bad byte)."""
        limits = self._config.limits
        filename = key.rsplit("/", 1)[-1]
        if head.size <= 0 or head.size > limits.max_object_bytes:
            # Judged by its size alone: nothing is read.
            return inspect([], size=head.size, content_type=head.content_type, filename=filename, limits=limits)
        with closing(self._s3.iter_object(key, version_id, READ_CHUNK_BYTES)) as chunks:
            return inspect(chunks, size=head.size, content_type=head.content_type, filename=filename, limits=limits)

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
                frames=verdict.frames,
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


# The object stays where it was stored (unreadable when untaggable, but stored all the same).
_STORED_ACTIONS = frozenset({Action.TAGGED_VALID, Action.ALREADY_DONE, Action.UNTAGGABLE})

_ACTION_METRICS = {
    Action.TAGGED_VALID: "ObjectsValid",
    Action.QUARANTINED: "ObjectsQuarantined",
    Action.DELETED: "ObjectsDeleted",
    Action.ALREADY_DONE: "DuplicateEvents",
    Action.GONE: "ObjectsGone",
    Action.IGNORED: "RecordsIgnored",
    Action.UNTAGGABLE: "ObjectsUntaggable",
}
