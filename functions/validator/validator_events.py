"""The validator's events, parsed at the edge with Powertools' parser models into plain values.

Two shapes arrive: SQS messages whose body is an S3 event notification (or S3's test message,
sent once when the notification is configured), and S3 events invoking the function directly.
Keys arrive URL-encoded with '+' for spaces, as in an HTML form.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3Model, SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json

from upload_core.validation import ObjectCreated


class S3TestEvent(BaseModel):
    """S3's ``s3:TestEvent``: acknowledged and ignored."""

    model_config = ConfigDict(extra="allow")

    Event: Literal["s3:TestEvent"]


class ValidationMessage(SqsRecordModel):
    """One message of the ValidationQueue: its body is JSON of an S3 notification."""

    body: Json[S3Model | S3TestEvent]  # type: ignore[assignment]


def created_objects(notification: S3Model | S3TestEvent) -> list[ObjectCreated]:
    """The ObjectCreated records of a notification; other event types and the test event yield nothing."""
    if not isinstance(notification, S3Model):
        return []
    created: list[ObjectCreated] = []
    for record in notification.Records:
        if not record.eventName.removeprefix("s3:").startswith("ObjectCreated:") or record.s3.object is None:
            continue
        s3_object = record.s3.object
        created.append(
            ObjectCreated(
                bucket=record.s3.bucket.name,
                key=unquote_plus(s3_object.key),
                version_id=s3_object.versionId or None,
                event_name=record.eventName,
                size=None if s3_object.size is None else int(s3_object.size),
            )
        )
    return created
