"""Request bodies an attacker sends to hurt the parser: too large, too deeply nested, too long a number.

Every body is at most MAX_BODY_BYTES (API Gateway would pass up to 10 MB); JSON is parsed by
`read_json`, which the resolver uses for every route (`json_body_deserializer`), so a body that
would exhaust the parser is a clean 4xx before any route code runs.
"""

from __future__ import annotations

import json
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


def refuse_oversized_body(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """For routes that read no body: they would ignore it, but a body over the limit is refused
    on every route alike (routes that read one were already refused by `read_json`)."""
    ensure_small_body(app.current_event.decoded_body)
    return next_middleware(app)
