"""The `responses=` of a route for the OpenAPI document: its success model and the errors it may answer."""

from __future__ import annotations

from typing import Any

from upload_edge.models import ErrorOut, GatewayErrorOut


def _json(model: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


def error(description: str) -> dict[str, Any]:
    return _json(ErrorOut, description)


def _gateway_error(description: str) -> dict[str, Any]:
    return _json(GatewayErrorOut, description)


# Statuses every route may answer with.
COMMON_ERRORS: dict[int, Any] = {
    400: error("The request is malformed or invalid"),
    401: _gateway_error("No token, or a token the JWT authorizer refuses (or whose subject is too long)"),
    413: _gateway_error("The request body is over the limit, or the size over the API's limit"),
    502: _gateway_error("The storage service failed, or the function did"),
    503: _gateway_error("The storage service is busy (retry later)"),
    504: _gateway_error("The storage service did not answer in time"),
}
FORBIDDEN = {403: error("The key is not one the API gave the caller")}
NOT_FOUND = {404: error("No such upload for this key, or no object at it")}
CONFLICT = {409: error("The object was changed by another request")}
UNSUPPORTED = {415: error("The content type is not allowed")}
TOO_MANY = {429: error("Over the caller's request rate or uploads in flight (Retry-After says when to retry)")}


def responses(status: int, model: Any, description: str, *extra: dict[int, Any]) -> dict[int, Any]:
    """The route's success (described by the model it returns: a model class, or e.g. a list of
    one; None for a body-less success), the common errors and its own."""
    # An explicit empty content for a body-less success: Powertools would otherwise describe the
    # return annotation.
    success = _json(model, description) if model is not None else {"description": description, "content": {}}
    documented: dict[int, Any] = {status: success, **COMMON_ERRORS}
    for more in extra:
        documented.update(more)
    return documented
