"""S3 ObjectCreated notifications → validate, tag and quarantine each new object version.

Two event shapes arrive here (parsed by validator_events' models, so the core sees plain values):
- SQS messages whose bodies are S3 event notifications (the template's route: bucket → queue →
  this function), processed with Powertools' BatchProcessor: a message that fails (a body that
  is not an S3 notification, a storage error) is reported in ``batchItemFailures`` and retried by
  the queue (then dead-lettered), the others are deleted;
- an S3 event invoking the function directly (``sam local invoke`` with events/validator-s3-direct.json,
  or a bucket wired straight to the function): any failure raises, so Lambda retries it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from redelivery import Redelivery
from upload_core.observability import logger, metrics, tracer
from upload_core.settings import get_settings
from upload_core.validation import ValidationService
from upload_core.validator_settings import get_validator_settings
from upload_core.verdict_events import EventsUnavailable
from validator_events import ValidationMessage, created_objects, parse_s3_event

# Fail at start, not on the first record, when a setting is wrong.
settings = get_settings()
validator_settings = get_validator_settings()
processor = BatchProcessor(event_type=EventType.SQS, model=ValidationMessage)
redelivery = Redelivery(settings.region)


@cache
def service() -> ValidationService:
    return ValidationService(settings, validator_settings)


def record_handler(record: ValidationMessage) -> None:
    """Every ObjectCreated record of one message; an error in one fails the whole message."""
    try:
        for created in created_objects(record.body):
            service().validate(created)
    except EventsUnavailable:
        # The verdict stands and only its event is pending: retry in minutes, not in 90.
        redelivery.sooner(record.eventSourceARN, record.receiptHandle, int(record.attributes.ApproximateReceiveCount))
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    records = event.get("Records") or []
    if records and all(record.get("eventSource") == "aws:s3" for record in records):
        for created in created_objects(parse_s3_event(event)):
            service().validate(created)
        return {}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
