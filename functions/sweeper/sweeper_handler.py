"""Scheduled: end uploads past their time or beyond their reservation, and release their usage."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_core.observability import logger, metrics, tracer
from upload_core.settings import get_settings
from upload_core.sweeper import Sweeper

settings = get_settings()  # fail at start, not on the first sweep, when a setting is wrong
sweeper = Sweeper(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return sweeper.sweep().as_dict()
