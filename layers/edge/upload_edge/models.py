"""The base of every request and response body (camelCase on the wire), and the error bodies."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A request or response body. Routes return these: Powertools' response validation serializes
    them by alias, so the JSON on the wire is camelCase. Strict and closed: "12" is not a size,
    true is not a part number, and an unknown field is a typo (and, in a response, a field the
    OpenAPI document would not describe).

    `defer_build`: a model's validator is built when a request first needs it, not at import; a
    function declares dozens of bodies and its first request uses two or three of them."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid", defer_build=True
    )

    @classmethod
    def from_domain(cls, value: object) -> Self:
        """The body for a domain object (upload_core's dataclasses) whose attributes, or whose
        nested objects' attributes, carry the body's fields by name: the one conversion place."""
        return cls.model_validate(value, from_attributes=True)


class ErrorOut(ApiModel):
    """Every error the functions answer with."""

    code: str
    message: str


class GatewayErrorOut(BaseModel):
    """Errors API Gateway may answer with before or instead of the function ({"message": ...}:
    no token, a body over 10 MB, a function that failed or timed out); open, so that the
    function's own {"code", "message"} for the same status fits too."""

    message: str
