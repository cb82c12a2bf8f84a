"""Who is calling: the `sub` claim that API Gateway's JWT authorizer verified."""

from __future__ import annotations

from typing import Any

from upload_core.errors import Unauthorized


def caller_id(router: Any) -> str:
    """`router` is the resolver or a Router; both expose the current event."""
    context = router.current_event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("the request carries no authenticated subject", code="Unauthorized")
    return subject
