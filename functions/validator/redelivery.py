"""A message whose verdict event the bus refused comes back sooner than the queue's timeout.

The queue's visibility timeout is sized for the longest validation (six times the function's
timeout, as AWS advises), so a failed message would otherwise wait 90 minutes before its event
is tried again. Only the event is pending at that point: the verdict is recorded and the
redelivery publishes without judging the object again (ValidationService._publish_pending).
The delay grows with each receive (1, 5, 25 minutes, then the queue's own 90), so a short
refusal costs a minute while a bus outage still takes about two hours, not five minutes, to
use up the queue's maxReceiveCount and dead-letter the message.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from upload_core.observability import logger

FIRST_RETRY_SECONDS = 60
BACKOFF_FACTOR = 5
# The template's ValidationQueue VisibilityTimeout: never make a message wait longer than that.
LONGEST_RETRY_SECONDS = 5400


def retry_delay(receive_count: int) -> int:
    """Seconds until the next delivery of a message received `receive_count` times."""
    return min(FIRST_RETRY_SECONDS * int(BACKOFF_FACTOR ** max(receive_count - 1, 0)), LONGEST_RETRY_SECONDS)


class Redelivery:
    """Shortens a failed message's invisibility; the SQS client is made on the first failure only."""

    def __init__(self, region: str, *, client: Any | None = None) -> None:
        self._region = region
        self._client = client
        self._queue_urls: dict[str, str] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=5)
            self._client = boto3.client("sqs", region_name=self._region, config=config)
        return self._client

    def sooner(self, queue_arn: str, receipt_handle: str, receive_count: int) -> None:
        """Best effort: when SQS refuses, the queue's own timeout still brings the message back."""
        try:
            self.client.change_message_visibility(
                QueueUrl=self._queue_url(queue_arn),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=retry_delay(receive_count),
            )
        except (ClientError, BotoCoreError, ValueError):
            logger.warning("the failed message keeps the queue's visibility timeout", exc_info=True)

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            parts = queue_arn.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
            response = self.client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            self._queue_urls[queue_arn] = str(response["QueueUrl"])
        return self._queue_urls[queue_arn]
