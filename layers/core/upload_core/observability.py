"""One Logger, Tracer and Metrics per container, shared by every module (Powertools' idiom)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider


class _QuietEMFProvider(AmazonCloudWatchEMFProvider):
    """Publishes nothing, silently, for a request that recorded no metric.

    Reads and refused requests record none; Powertools would print a "No application metrics to
    publish" warning for each, burying the `make dev` console and the function logs.
    """

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if self.metric_set or raise_on_empty_metrics:
            super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


def _metrics() -> Metrics:
    metrics = Metrics()
    # The same shared sets Metrics gave its own provider, so every Metrics() sees one state.
    metrics.provider = _QuietEMFProvider(
        metric_set=metrics.metric_set,
        dimension_set=metrics.dimension_set,
        metadata_set=metrics.metadata_set,
        default_dimensions=metrics.default_dimensions,
    )
    return metrics


logger = Logger()
tracer = Tracer()
metrics = _metrics()
