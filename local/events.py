"""The template's asynchronous event sources, run locally: bucket notifications and SQS queues.

Read from the template, nothing listed twice:
- a function event ``Type: S3`` on the bucket, or the bucket's ``NotificationConfiguration``
  ``LambdaConfigurations`` naming a function: the bucket notifies a private local queue and a
  poller invokes the function with the S3 event, as Lambda's asynchronous invocation would
  (up to 3 attempts, then the event is dropped with a log line);
- the bucket's ``QueueConfigurations`` naming a template queue, and a function event
  ``Type: SQS`` on a template queue: the poller invokes the function with SQS events of up to
  BatchSize records, deletes what succeeded (honouring ReportBatchItemFailures) and leaves the
  rest to the queue's visibility timeout and redrive policy, as Lambda's event source mapping does.
When the template has none of these, nothing runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.functions import Invocation
from local.resources import warn
from local.template import LOCAL_REGION, FunctionSpec, Template

ASYNC_ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try plus two retries
ASYNC_RETRY_DELAY_SECONDS = 2  # locally retried after seconds rather than minutes
POLL_WAIT_SECONDS = 1

Invoker = Callable[[str, Any], Invocation]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A queue whose messages invoke a function: ``kind`` "s3" (async S3 event) or "sqs"."""

    function_logical_id: str
    queue_url: str
    queue_arn: str
    kind: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


def s3_filter(cfn_filter: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A CloudFormation notification Filter (S3Key.Rules) in S3 API shape (Key.FilterRules)."""
    rules = ((cfn_filter or {}).get("S3Key") or {}).get("Rules") or []
    if not rules:
        return None
    return {"Key": {"FilterRules": [{"Name": str(rule["Name"]).lower(), "Value": rule["Value"]} for rule in rules]}}


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
        self._specs = {spec.logical_id: spec for spec in specs}
        self._invoke = invoke
        self._s3 = s3
        self._sqs = sqs
        self._bucket = bucket
        self._values = dict(resource_values)
        self._overrides = parameter_overrides
        self.subscriptions: list[Subscription] = []
        self._queue_configurations: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        self._lock = threading.Lock()

    # ---- wiring

    def wire(self) -> EventSources:
        """Creates the queues and the bucket's notification configuration; polling starts in start()."""
        resolver = self._template.resolver(self._values, self._overrides)
        bucket_ref = {"Ref": self._template.bucket_logical_id()}
        for spec in self._specs.values():
            for name, event in spec.events.items():
                kind = event.get("Type") if isinstance(event, dict) else None
                if kind in (None, "HttpApi"):
                    continue
                if kind not in ("S3", "SQS"):
                    warn(f"{spec.logical_id}.Events.{name}: event source {kind} is not emulated")
                    continue
                raw = event.get("Properties") or {}
                properties = resolver.resolve(raw, f"{spec.logical_id}.Events.{name}")
                if kind == "SQS":
                    self._poll_queue(spec.logical_id, properties)
                elif raw.get("Bucket") == bucket_ref:
                    self._notify_function(spec.logical_id, properties.get("Events"), properties.get("Filter"))
                else:
                    warn(f"{spec.logical_id}.Events.{name}: only the template's own bucket is emulated")
        self._wire_bucket_notifications()
        if self._queue_configurations:
            self._s3.put_bucket_notification_configuration(
                Bucket=self._bucket,
                NotificationConfiguration={"QueueConfigurations": self._queue_configurations},
            )
        return self

    def _wire_bucket_notifications(self) -> None:
        configuration = (
            self._template.bucket_properties(self._values, self._overrides).get("NotificationConfiguration") or {}
        )
        arns = {self._function_arn(logical_id): logical_id for logical_id in self._specs}
        for item in configuration.get("LambdaConfigurations") or []:
            logical_id = arns.get(str(item.get("Function")))
            if logical_id is None:
                warn(f"bucket notification to {item.get('Function')}: not a function of this template")
                continue
            self._notify_function(logical_id, item.get("Event"), item.get("Filter"))
        for item in configuration.get("QueueConfigurations") or []:
            arn = str(item.get("Queue"))
            url = self._queue_url(arn)
            if url is None:
                warn(f"bucket notification to {arn}: not a queue of this template")
                continue
            self._allow_bucket(url, arn)
            self._add_queue_configuration(arn, item.get("Event"), item.get("Filter"))
        for other in ("TopicConfigurations", "EventBridgeConfiguration"):
            if configuration.get(other):
                warn(f"bucket NotificationConfiguration.{other} is not emulated")

    def _notify_function(self, logical_id: str, events: Any, cfn_filter: Any) -> None:
        name = f"local-s3-events-{logical_id}"[:80]
        url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._allow_bucket(url, arn)
        self._add_queue_configuration(arn, events, cfn_filter)
        self.subscriptions.append(Subscription(logical_id, url, arn, "s3", batch_size=1))

    def _poll_queue(self, logical_id: str, properties: Mapping[str, Any]) -> None:
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
                "sqs",
                batch_size=min(10, int(properties.get("BatchSize", 10))),
                report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
            )
        )

    def _add_queue_configuration(self, arn: str, events: Any, cfn_filter: Any) -> None:
        event_list = [events] if isinstance(events, str) else list(events or ["s3:ObjectCreated:*"])
        configuration: dict[str, Any] = {"QueueArn": arn, "Events": event_list}
        key_filter = s3_filter(cfn_filter)
        if key_filter:
            configuration["Filter"] = key_filter
        self._queue_configurations.append(configuration)

    def _allow_bucket(self, url: str, arn: str) -> None:
        """What the template's queue policy grants in AWS: the bucket may send to the queue."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{self._bucket}"}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})

    def _queue_url(self, arn: str) -> str | None:
        for key, value in self._values.items():
            if key.endswith(".Arn") and value == arn:
                return self._values.get(key[: -len(".Arn")])
        return None

    def _function_arn(self, logical_id: str) -> str:
        return str(self._template.resolver(self._values, self._overrides).get_att(logical_id, "Arn", logical_id))

    # ---- polling

    def start(self) -> EventSources:
        for subscription in self.subscriptions:
            thread = threading.Thread(
                target=self._poll, args=(subscription,), name=f"events-{subscription.function_logical_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

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
                if subscription.kind == "s3":
                    for item in messages:
                        self._deliver_s3(subscription, item)
                else:
                    self._deliver_sqs(subscription, messages)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver_s3(self, subscription: Subscription, item: Mapping[str, Any]) -> None:
        try:
            event = json.loads(item["Body"])
        except ValueError:
            event = None
        if not isinstance(event, dict) or "Records" not in event:  # e.g. S3's s3:TestEvent
            self._delete(subscription, [item])
            return
        invocation = self._invoke(subscription.function_logical_id, event)
        attempts = int((item.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
        if invocation.ok:
            self._delete(subscription, [item])
        elif attempts >= ASYNC_ATTEMPTS:
            warn(
                f"{subscription.function_logical_id} failed {attempts} times on "
                f"{_describe_s3_event(event)}; event dropped ({invocation.error.get('errorType')})"
            )
            self._delete(subscription, [item])
        else:
            self._sqs.change_message_visibility(
                QueueUrl=subscription.queue_url,
                ReceiptHandle=item["ReceiptHandle"],
                VisibilityTimeout=ASYNC_RETRY_DELAY_SECONDS,
            )

    def _deliver_sqs(self, subscription: Subscription, messages: list[Mapping[str, Any]]) -> None:
        event = {"Records": [_sqs_record(item, subscription.queue_arn) for item in messages]}
        invocation = self._invoke(subscription.function_logical_id, event)
        if not invocation.ok:
            return  # the whole batch becomes visible again after the queue's visibility timeout
        failed: set[str] = set()
        if subscription.report_batch_item_failures and isinstance(invocation.result, dict):
            failures = invocation.result.get("batchItemFailures") or []
            failed = {str(entry.get("itemIdentifier")) for entry in failures if isinstance(entry, dict)}
        self._delete(subscription, [item for item in messages if item["MessageId"] not in failed])

    def _delete(self, subscription: Subscription, messages: list[Mapping[str, Any]]) -> None:
        if not messages:
            return
        self._sqs.delete_message_batch(
            QueueUrl=subscription.queue_url,
            Entries=[{"Id": str(index), "ReceiptHandle": item["ReceiptHandle"]} for index, item in enumerate(messages)],
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


def _describe_s3_event(event: Mapping[str, Any]) -> str:
    keys = [record.get("s3", {}).get("object", {}).get("key", "?") for record in event.get("Records") or []]
    return ", ".join(keys) or "an S3 event"
