"""The HTTP API resolver every API function uses: request validation, safe JSON bodies, one error mapping."""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from upload_edge.http_errors import ValidationCodes, install_error_handlers
from upload_edge.request_body import guard_body, read_json


def http_resolver(validation_codes: Mapping[str, ValidationCodes] | None = None) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=read_json)
    install_error_handlers(app, validation_codes)
    app.use(middlewares=[guard_body])
    return app
