"""One Logger, Tracer and Metrics per container, shared by every module (Powertools' idiom)."""

from __future__ import annotations

import numbers
import traceback
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


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


class _NoSegment(BaseSegment):
    """What a disabled tracer's subsegments are: nothing is recorded."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(
        self, exception: BaseException, stack: list[traceback.StackSummary], remote: bool = False
    ) -> None:
        pass


class _Untraced(BaseProvider):
    """The provider of a tracer that is off (POWERTOOLS_TRACE_DISABLED, `sam local`, outside Lambda).

    Powertools' Tracer imports the X-Ray SDK (and through it wrapt and asyncio) to build its
    provider even when tracing is disabled; this one costs nothing to start. With tracing on
    (Lambda with `Tracing: Active`) the X-Ray SDK's provider is used as usual.
    """

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncGenerator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


# What the functions call through: boto3 (botocore) and the remote import's fetcher (urllib3 on
# http.client). Powertools' default patches every library the X-Ray SDK supports that is
# importable, so each start would import and patch sqlite3, requests... which nothing here uses.
TRACED_LIBRARIES = ("botocore", "httplib")


def _tracer() -> Tracer:
    # Powertools' own rule for "tracing is off", so that the two never disagree.
    if Tracer._is_tracer_disabled():
        return Tracer(disabled=True, provider=_Untraced())
    return Tracer(patch_modules=TRACED_LIBRARIES)


logger = Logger()
tracer = _tracer()
metrics = _metrics()
