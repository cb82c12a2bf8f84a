"""One Logger, Tracer and Metrics per container, shared by every module (Powertools' idiom)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
