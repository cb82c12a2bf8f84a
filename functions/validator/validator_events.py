"""The validator's events, parsed at the edge with Powertools' parser models into plain values.

Two shapes arrive: SQS messages whose body is an S3 event notification (or S3's test message,
sent once when the notification is configured), and S3 events invoking the function directly.
Keys arrive URL-encoded with '+' for spaces, as in an HTML form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3Model, SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json, ValidatorFunctionWrapHandler, field_validator

from upload_core.validation import ObjectCreated


class S3TestEvent(BaseModel):
    """S3's ``s3:TestEvent``: acknowledged and ignored."""

    model_config = ConfigDict(extra="allow")

    Event: Literal["s3:TestEvent"]


class ValidationMessage(SqsRecordModel):
    """One message of the ValidationQueue: its body is JSON of an S3 notification."""

    body: Json[S3Model | S3TestEvent]  # type: ignore[assignment]

    @field_validator("body", mode="wrap")
    @classmethod
    def _malformed_is_invalid(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Powertools' S3 record validator reads the record before checking it, so a partial record
        # raises AttributeError, which pydantic does not turn into a ValidationError; the batch
        # processor then loses the message. As a ValueError it is a validation failure of this
        # model, reported in batchItemFailures like any other malformed message.
        try:
            return handler(value)
        except (AttributeError, TypeError, KeyError) as error:
            raise ValueError(f"not an S3 event notification: {type(error).__name__}") from None


def parse_s3_event(event: Mapping[str, Any]) -> S3Model:
    """A direct S3 event; anything malformed is a ValueError (a pydantic ValidationError mostly)."""
    try:
        return S3Model.model_validate(event)
    except (AttributeError, TypeError, KeyError) as error:
        raise ValueError(f"not an S3 event notification: {type(error).__name__}") from None


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
