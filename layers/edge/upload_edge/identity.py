"""Who is calling: the `sub` claim API Gateway's JWT authorizer verified, for every API function.

Routes take it with `Annotated[str, Depends(caller_id)]`; tests swap it through `app.dependency_overrides`.
"""

from __future__ import annotations

from typing import cast

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from upload_core import keys
from upload_core.errors import Unauthorized

# Every key is `<prefix>/<owner segment>/<32 hex>/<filename of at most keys.MAX_FILENAME_BYTES>` and
# S3 keys end at 1,024 bytes: a bounded owner segment keeps every key the API makes within that.
# OIDC keeps `sub` to 255 ASCII characters; escaping (keys.owner_segment) at most triples them.
MAX_OWNER_SEGMENT_BYTES = 768


def caller_id(request: Request) -> str:
    event = cast(APIGatewayProxyEventV2, request.resolved_event)
    authorizer = event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer else None
    subject = claims.get("sub") if claims else None
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("the request carries no authenticated subject", code="Unauthorized")
    if len(keys.owner_segment(subject).encode()) > MAX_OWNER_SEGMENT_BYTES:
        # Refused before any route runs, so no route can build a key S3 would refuse.
        raise Unauthorized("the token's subject is too long to name your keys", code="SubjectTooLong")
    return subject
