"""Verdicts leave the system as EventBridge events: ``Upload Validated`` / ``Upload Rejected``.

One event per object version. The validator call whose ``record_verdict`` wins (a conditional
write) stores the event with the verdict as pending; a call publishes it only after claiming it
(``Registry.claim_event``) and flags it published once the bus took it. A refused PutEvents fails
the SQS message, whose redelivery publishes the recorded event without judging the object again;
a notification S3 delivers twice finds it published, or claimed, and publishes nothing. So an
event is published at least once, and more than once only if the validator stops between the
bus's answer and the flag (see README, "Verdict events"). Applications subscribe with a rule on
``source`` = SOURCE; nothing polls.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from upload_core.errors import UpstreamError

SOURCE = "s3-direct-upload"
VALIDATED = "Upload Validated"
REJECTED = "Upload Rejected"
DEFAULT_BUS = "default"


@dataclass(frozen=True, slots=True)
class VerdictEvent:
    owner: str
    file_id: str
    key: str
    version_id: str
    size: int
    content_type: str
    valid: bool
    reason: str | None

    def to_json(self) -> str:
        """The event as the registry keeps it until it is published."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> VerdictEvent:
        return cls(**json.loads(text))

    @property
    def detail_type(self) -> str:
        return VALIDATED if self.valid else REJECTED

    def detail(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "fileId": self.file_id,
            "key": self.key,
            "versionId": self.version_id,
            "size": self.size,
            "contentType": self.content_type,
            "reason": self.reason,
        }


class EventsUnavailable(UpstreamError):
    code = "EventsUnavailable"


class VerdictPublisher:
    def __init__(self, bus_name: str, *, region: str = "us-east-1", client: Any | None = None) -> None:
        self._bus = bus_name or DEFAULT_BUS
        self._region = region
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            # The endpoint comes from AWS_ENDPOINT_URL_EVENTBRIDGE when set (the local stack sets it).
            config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=5)
            self._client = boto3.client("events", region_name=self._region, config=config)
        return self._client

    def publish(self, event: VerdictEvent) -> None:
        """Raise when the bus did not accept the event (the caller keeps it pending and fails the message)."""
        entry = {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail()),
            "EventBusName": self._bus,
        }
        try:
            response = self.client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as error:
            raise EventsUnavailable("the verdict event could not be published") from error
        if response.get("FailedEntryCount"):
            raise EventsUnavailable("the event bus refused the verdict event")


def publisher_from_env(region: str) -> VerdictPublisher:
    return VerdictPublisher(os.environ.get("EVENT_BUS_NAME", DEFAULT_BUS), region=region)
