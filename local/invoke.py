"""Docker-free ``sam local invoke``: one function, one event, the template's environment.

    python -m local.invoke UploadsFunction events/uploads-create.json
    python -m local.invoke UploadsFunction - < event.json --env-vars env.json
    python -m local.invoke UploadsFunction events/uploads-list.json --s3-endpoint http://127.0.0.1:4566

The function runs in a one-shot worker, exactly as the local stack runs it (same environment,
same code and layer paths). Without ``--s3-endpoint`` a throwaway embedded S3 with the
template's bucket and queues is started for the invocation; with it, the function talks to an
already running local stack (``make dev``). S3 records in the event (direct, or inside SQS
messages) are pointed at the local bucket, and in a throwaway S3 each record's object is first
created as a small real image of its key's type, so a validator event validates something; the
objects' tags are printed afterwards. The handler's response is printed on stdout as
JSON, its logs go to stderr; on a handler error the error document is printed and the exit
status is 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import io
import json
import mimetypes
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from PIL import Image

from local.dev import parse_overrides
from local.functions import LocalAws, WorkerError, WorkerProcess, lambda_environment
from local.resources import provision
from local.s3server import EmbeddedS3, S3StartError, emulator_client, s3_client, sqs_client
from local.template import Template, TemplateError, load_template


def read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{what} {path} is not JSON: {error}") from None


def sample_image(key: str) -> tuple[bytes, str]:
    """A small real image in the format the key's extension names (PNG when it names none)."""
    content_type = mimetypes.guess_type(key)[0] or "image/png"
    image_format = {"image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}.get(content_type, "PNG")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, format=image_format)
    return buffer.getvalue(), Image.MIME[image_format]


def s3_records(event: Any) -> list[dict[str, Any]]:
    """The event's S3 records, also those inside SQS messages (re-serialised when changed)."""
    records: list[dict[str, Any]] = []
    for record in (event.get("Records") or []) if isinstance(event, dict) else []:
        if isinstance(record.get("s3"), dict):
            records.append(record)
        elif isinstance(record.get("body"), str) and '"s3"' in record["body"]:
            body = json.loads(record["body"])
            records.extend(s3_records(body))
            record["body"] = body  # serialised again by localise_event
    return records


def localise_event(event: Any, bucket: str, s3: Any | None) -> list[str]:
    """Points the event's S3 records at ``bucket``; with ``s3``, creates each record's object."""
    keys: list[str] = []
    for record in s3_records(event):
        record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
        target = record["s3"]["object"]
        key = unquote_plus(target["key"])
        keys.append(key)
        if s3 is not None:
            body, content_type = sample_image(key)
            stored = s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, Tagging="upload-status=pending"
            )
            target.update(size=len(body), eTag=stored["ETag"].strip('"'))
            if stored.get("VersionId"):
                target["versionId"] = stored["VersionId"]
    for record in (event.get("Records") or []) if isinstance(event, dict) else []:
        if isinstance(record.get("body"), dict):
            record["body"] = json.dumps(record["body"])
    return keys


def invoke(
    template: Template,
    function_id: str,
    event: Any,
    *,
    s3_endpoint: str | None = None,
    env_vars: Mapping[str, Any] | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
) -> tuple[bool, Any]:
    """Runs one invocation; returns (ok, the handler's result or Lambda's error document)."""
    embedded: EmbeddedS3 | None = None
    try:
        if s3_endpoint is None:
            embedded = EmbeddedS3().start()
            endpoint = embedded.endpoint_url
            bucket, values = provision(
                embedded.s3_client(), embedded.sqs_client(), embedded.dynamodb_client(), template, parameter_overrides
            )
            keys = localise_event(event, bucket, embedded.s3_client())
        else:
            endpoint = s3_endpoint
            s3, sqs, dynamodb = s3_client(endpoint), sqs_client(endpoint), emulator_client("dynamodb", endpoint)
            # Idempotent: finds what exists.
            bucket, values = provision(s3, sqs, dynamodb, template, parameter_overrides)
            keys = localise_event(event, bucket, None)
        spec = template.function(function_id, values, parameter_overrides)
        worker = WorkerProcess(spec, lambda_environment(spec, LocalAws(endpoint), env_vars))
        try:
            invocation = worker.invoke(event)
        finally:
            worker.stop()
        if embedded is not None:
            for key in keys:
                try:
                    tags = embedded.s3_client().get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
                except ClientError:
                    print(f"{key}: no longer there (quarantined or deleted)", file=sys.stderr)
                    continue
                print(f"{key}: " + " ".join(f"{tag['Key']}={tag['Value']}" for tag in tags), file=sys.stderr)
    finally:
        if embedded is not None:
            embedded.stop()
    return (True, invocation.result) if invocation.ok else (False, invocation.error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.invoke", description="Run one function of template.yaml on one event, without Docker."
    )
    parser.add_argument("function", help="the function's logical id in the template, e.g. UploadsFunction")
    parser.add_argument("event", help="event JSON file (- reads stdin), e.g. events/uploads-create.json")
    parser.add_argument("--env-vars", help='JSON file like sam\'s: {"Parameters": {...}, "<LogicalId>": {...}}')
    parser.add_argument("--s3-endpoint", help="use this running embedded S3 (e.g. http://127.0.0.1:4566)")
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--template", type=Path, help="template file (default: the repository's template.yaml)")
    args = parser.parse_args(argv)
    try:
        template = load_template(args.template)
        event = read_json(args.event, "event")
        env_vars = read_json(args.env_vars, "env vars file") if args.env_vars else None
        if env_vars is not None and not isinstance(env_vars, dict):
            raise ValueError("the env vars file must hold a JSON object")
        ok, document = invoke(
            template,
            args.function,
            event,
            s3_endpoint=args.s3_endpoint,
            env_vars=env_vars,
            parameter_overrides=parse_overrides(args.parameter_overrides),
        )
    except (ValueError, TemplateError, S3StartError, WorkerError) as error:
        print(f"local.invoke: {error}", file=sys.stderr)
        return 2
    print(json.dumps(document, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
