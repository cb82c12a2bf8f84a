"""Request bodies an attacker sends to hurt the parser: too large, too deeply nested, too long a number.

Every body is at most MAX_BODY_BYTES (API Gateway would pass up to 10 MB) and JSON is parsed by
`read_json` (the resolver's `json_body_deserializer`), so a body that would exhaust the parser is
a clean 4xx (413 BodyTooLarge, 400 InvalidJson) before any route code runs, on every route.
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from upload_core.errors import InvalidRequest, TooLarge

# The largest legitimate body, a completion listing 10,000 parts with their ETags, is about 600 KB.
MAX_BODY_BYTES = 1024 * 1024


def ensure_small_body(text: str | None) -> None:
    # Characters, not bytes: a text of n characters is at least n bytes, so this never lets more through.
    if text is not None and len(text) > MAX_BODY_BYTES:
        raise TooLarge(f"the request body is over {MAX_BODY_BYTES} bytes", code="BodyTooLarge")


def read_json(text: str) -> Any:
    """json.loads for request bodies: a JSON syntax error stays a JSONDecodeError (Powertools' request
    validation reports it), everything else that defeats the parser becomes InvalidJson."""
    ensure_small_body(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply", code="InvalidJson") from None
    except ValueError:
        # Python refuses to convert integers of more than 4,300 digits (CVE-2020-10735).
        raise InvalidRequest("the request body holds a number too long to read", code="InvalidJson") from None


def guard_body(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """The same guards for routes that read no body: such a route ignores it, but a body that is
    too large, too deep or holds too long a number is refused on every route alike. (A route that
    reads its body parsed it with `read_json` already; `json_body` keeps that result.)"""
    event = app.current_event
    ensure_small_body(event.decoded_body)
    # Not JSON at all: nothing reads it, and nothing in it can hurt.
    with suppress(json.JSONDecodeError):
        _ = event.json_body
    return next_middleware(app)
