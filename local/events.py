"""The template's asynchronous event sources, run locally: the bucket's notifications to its queues
and the functions' SQS triggers.

The bucket's ``NotificationConfiguration.QueueConfigurations`` are applied to the embedded S3
(which then sends S3 events to the template's queues), and each function event ``Type: SQS`` gets
a poller that invokes the function with batches of up to BatchSize records, deletes what succeeded
(honouring ReportBatchItemFailures) and leaves the rest to the queue's visibility timeout and
redrive policy, as Lambda's event source mapping does. ``Type: Schedule`` events with a rate()
expression (the sweeper) get a thread that invokes the function at that interval; other event
types are reported as not emulated.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.functions import Invocation
from local.resources import warn
from local.template import LOCAL_REGION, FunctionSpec, Template

POLL_WAIT_SECONDS = 1
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

Invoker = Callable[[str, Any], Invocation]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A queue whose messages invoke a function (``kind`` "sqs": Lambda's event source mapping)."""

    function_logical_id: str
    queue_url: str
    queue_arn: str
    kind: str = "sqs"
    batch_size: int = 10
    report_batch_item_failures: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    """A function invoked every ``interval_seconds`` (an EventBridge ``rate(...)`` schedule)."""

    function_logical_id: str
    name: str
    interval_seconds: float


def rate_seconds(expression: str) -> float | None:
    """The interval of a ``rate(N unit)`` expression; None for cron() (not emulated)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _RATE_UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_name: str) -> dict[str, Any]:
    """The event an EventBridge schedule rule hands a function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:000000000000:rule/local-{rule_name}"],
        "detail": {},
    }


class EventSources:
    """Wires the bucket's notifications and the functions' queue triggers, then polls the queues."""

    def __init__(
        self,
        template: Template,
        specs: list[FunctionSpec],
        invoke: Invoker,
        *,
        s3: Any,
        sqs: Any,
        bucket: str,
        resource_values: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._template = template
        self._specs = specs
        self._invoke = invoke
        self._s3 = s3
        self._sqs = sqs
        self._bucket = bucket
        self._values = dict(resource_values)
        self._overrides = parameter_overrides
        self.subscriptions: list[Subscription] = []
        self.schedules: list[Schedule] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        self._lock = threading.Lock()

    def wire(self) -> EventSources:
        """Applies the bucket's queue notifications and subscribes the SQS triggers; start() polls."""
        resolver = self._template.resolver(self._values, self._overrides)
        for spec in self._specs:
            for name, event in spec.events.items():
                if event.get("Type") == "SQS":
                    properties = resolver.resolve(event.get("Properties") or {}, f"{spec.logical_id}.Events.{name}")
                    self._subscribe(spec.logical_id, properties)
                elif event.get("Type") == "Schedule":
                    properties = resolver.resolve(event.get("Properties") or {}, f"{spec.logical_id}.Events.{name}")
                    interval = rate_seconds(str(properties.get("Schedule", "")))
                    if interval is None:
                        warn(f"{spec.logical_id}.Events.{name}: only rate() schedules are emulated")
                    else:
                        self.schedules.append(Schedule(spec.logical_id, name, interval))
                elif event.get("Type") != "HttpApi":
                    warn(f"{spec.logical_id}.Events.{name}: event source {event.get('Type')} is not emulated")
        notifications = self._template.bucket_properties(self._values, self._overrides).get("NotificationConfiguration")
        configurations = []
        for item in (notifications or {}).get("QueueConfigurations") or []:
            rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            self._allow_bucket(item["Queue"])
            configuration: dict[str, Any] = {"QueueArn": item["Queue"], "Events": [item["Event"]]}
            if rules:
                key_rules = [{"Name": str(rule["Name"]).lower(), "Value": rule["Value"]} for rule in rules]
                configuration["Filter"] = {"Key": {"FilterRules": key_rules}}
            configurations.append(configuration)
        if set(notifications or {}) - {"QueueConfigurations"}:
            warn("bucket notifications other than QueueConfigurations are not emulated")
        if configurations:
            self._s3.put_bucket_notification_configuration(
                Bucket=self._bucket, NotificationConfiguration={"QueueConfigurations": configurations}
            )
        return self

    def _queue_url(self, arn: str) -> str | None:
        found = (self._values[key[:-4]] for key, value in self._values.items() if key.endswith(".Arn") and value == arn)
        return next(found, None)

    def _allow_bucket(self, arn: str) -> None:
        """What the template's queue policy grants in AWS: the bucket may send to the queue."""
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{self._bucket}"}},
        }
        url = self._queue_url(arn)
        if url is None:
            warn(f"bucket notification to {arn}: not a queue of this template")
            return
        policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        self._sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})

    def _subscribe(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        arn = str(properties.get("Queue"))
        url = self._queue_url(arn)
        if url is None:
            warn(f"{logical_id}: SQS event source {arn} is not a queue of this template")
            return
        self.subscriptions.append(
            Subscription(
                logical_id,
                url,
                arn,
                batch_size=min(10, int(properties.get("BatchSize", 10))),
                report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
            )
        )

    # ---- polling

    def start(self) -> EventSources:
        for subscription in self.subscriptions:
            thread = threading.Thread(
                target=self._poll, args=(subscription,), name=f"events-{subscription.function_logical_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        for schedule in self.schedules:
            thread = threading.Thread(
                target=self._tick, args=(schedule,), name=f"schedule-{schedule.function_logical_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _tick(self, schedule: Schedule) -> None:
        while not self._stop.wait(schedule.interval_seconds):
            try:
                invocation = self._invoke(schedule.function_logical_id, scheduled_event(schedule.name))
            except Exception as error:  # the worker died: the next tick starts a new one
                warn(f"{schedule.function_logical_id}: scheduled invocation failed: {error}")
                continue
            if not invocation.ok:
                warn(f"{schedule.function_logical_id}: scheduled invocation failed: {invocation.error}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 5)
        self._threads.clear()

    def idle(self) -> bool:
        """No message waiting or in flight on any subscribed queue, and no invocation running."""
        with self._lock:
            if self._in_flight:
                return False
        for subscription in self.subscriptions:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=subscription.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if any(int(value) for value in attributes.values()):
                return False
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every notification so far has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _poll(self, subscription: Subscription) -> None:
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=subscription.queue_url,
                    MaxNumberOfMessages=subscription.batch_size,
                    WaitTimeSeconds=POLL_WAIT_SECONDS,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as error:  # the emulator is going away, or a transient error
                if not self._stop.is_set():
                    warn(f"polling {subscription.queue_url}: {error}")
                    self._stop.wait(1)
                continue
            messages = response.get("Messages") or []
            if not messages:
                continue
            with self._lock:
                self._in_flight += 1
            try:
                self._deliver(subscription, messages)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver(self, subscription: Subscription, messages: list[Mapping[str, Any]]) -> None:
        event = {"Records": [_sqs_record(item, subscription.queue_arn) for item in messages]}
        invocation = self._invoke(subscription.function_logical_id, event)
        if not invocation.ok:
            return  # the whole batch becomes visible again after the queue's visibility timeout
        failed: set[str] = set()
        if subscription.report_batch_item_failures and isinstance(invocation.result, dict):
            failures = invocation.result.get("batchItemFailures") or []
            failed = {str(entry.get("itemIdentifier")) for entry in failures if isinstance(entry, dict)}
        done = [item for item in messages if item["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=subscription.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": item["ReceiptHandle"]} for index, item in enumerate(done)],
            )


def _sqs_record(item: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message as Lambda's event source mapping presents it."""
    return {
        "messageId": item["MessageId"],
        "receiptHandle": item["ReceiptHandle"],
        "body": item["Body"],
        "attributes": dict(item.get("Attributes") or {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in (item.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": item.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }
