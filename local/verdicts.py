"""The local stack's subscriber to verdict events: the README's rule, made for real in MiniStack.

The validator publishes `Upload Validated` / `Upload Rejected` to the emulator's EventBridge (the
default bus unless EventBusName says otherwise); a rule on ``source`` sends them to a local SQS
queue, as an application would subscribe, and this watcher reads the queue: one console line per
event (`make dev`) and a list tests can wait on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from local import console

# upload_core.verdict_events.SOURCE (the local stack does not import the layers; a test checks).
SOURCE = "s3-direct-upload"
RULE_NAME = "local-verdicts"
QUEUE_NAME = "local-verdicts"


class VerdictWatcher:
    def __init__(self, events: Any, sqs: Any, *, bus_name: str = "default") -> None:
        self._events = events
        self._sqs = sqs
        self._bus = bus_name
        self._queue_url = ""
        self._received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wire(self) -> VerdictWatcher:
        """The bus (unless it is the default one), the queue and the rule between them: idempotent."""
        if self._bus != "default" and self._bus not in {
            bus["Name"] for bus in self._events.list_event_buses()["EventBuses"]
        }:
            self._events.create_event_bus(Name=self._bus)
        self._queue_url = self._sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._events.put_rule(Name=RULE_NAME, EventBusName=self._bus, EventPattern=json.dumps({"source": [SOURCE]}))
        self._events.put_targets(Rule=RULE_NAME, EventBusName=self._bus, Targets=[{"Id": "local-queue", "Arn": arn}])
        return self

    def start(self) -> VerdictWatcher:
        self._thread = threading.Thread(target=self._poll, name="verdict-events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every event received so far (EventBridge envelopes: ``detail-type``, ``detail``)."""
        with self._lock:
            return list(self._received)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> list[dict[str, Any]]:
        """The received events that match, once at least one does (or none after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [event for event in self.received if predicate(event)]
            if matching or time.monotonic() > deadline:
                return matching
            time.sleep(0.1)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception as error:
                if not self._stop.is_set():
                    console.emit(f"verdict events: {error}")
                    time.sleep(1)
                continue
            for message in reply.get("Messages", []):
                self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        try:
            event = json.loads(message["Body"])
            detail = event["detail"]
            line = f"event {event['detail-type']} {detail['key']} {detail.get('reason') or ''}".rstrip()
        except (ValueError, KeyError, TypeError):
            event, line = None, f"event (not a verdict): {message.get('Body', '')[:200]}"
        if event is not None:
            with self._lock:
                self._received.append(event)
        console.emit(line)
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
