"""The sweeper: ends uploads that outlived their plan or stored more than they reserved.

Run on a schedule. Native uploads cannot store more than their plan (every part's length is
signed), so for them the sweeper only ends what timed out. Uploads whose client picks its own
part sizes (Companion) are bound at completion, and between two sweeps by this check: what
such an upload can store beyond its reservation is what its client uploads in one interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from upload_core.errors import NotFound, UploadError
from upload_core.observability import logger, metrics
from upload_core.registry import PlanKind, PlanState, Registry, UploadPlan, registry_for
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings


@dataclass(slots=True)
class SweepReport:
    expired: int = 0  # time was up and nothing was stored: aborted, reservation released
    settled: int = 0  # time was up but the object was stored (a lost answer): usage settled
    over_reservation: int = 0  # stored parts beyond the reservation: aborted, released
    failed: int = 0  # could not be swept this time (S3 or the registry failed); tried again next time

    def as_dict(self) -> dict[str, int]:
        return {
            "expired": self.expired,
            "settled": self.settled,
            "overReservation": self.over_reservation,
            "failed": self.failed,
        }


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        s3: S3Gateway | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s3 = s3 or S3Gateway(settings)
        self._registry = registry or registry_for(settings, clock)
        self._clock = clock

    def sweep(self) -> SweepReport:
        report = SweepReport()
        for plan in self._registry.open_plans(expired_before=int(self._clock())):
            self._guarded(self._end_expired, plan, report)
        for plan in self._registry.open_plans():
            self._guarded(self._check_stored_parts, plan, report)
        for name, value in report.as_dict().items():
            metrics.add_metric(name=f"Swept{name[0].upper()}{name[1:]}", unit=MetricUnit.Count, value=value)
        logger.info("sweep finished", extra=report.as_dict())
        return report

    def _guarded(self, step: Callable[[UploadPlan, SweepReport], None], plan: UploadPlan, report: SweepReport) -> None:
        """One plan's failure (S3 or the registry unreachable) must not stop the sweep; the plan
        keeps its reservation and the next sweep tries again."""
        try:
            step(plan, report)
        except UploadError as error:
            report.failed += 1
            logger.warning("could not sweep an upload", extra={"key": plan.key, "code": error.code})

    def _end_expired(self, plan: UploadPlan, report: SweepReport) -> None:
        head = self._s3.head_object(plan.key)
        if head is not None:
            # The object exists: a complete whose registry write was lost, or a form whose
            # validation has not settled it yet. It is stored, so it counts as stored.
            if self._registry.settle(plan, head.size):
                report.settled += 1
            return
        if plan.kind is not PlanKind.FORM:
            # Every upload at the key: the plan may never have learnt its upload id.
            for upload in self._s3.list_multipart_uploads(plan.key):
                if upload.key == plan.key:
                    self._s3.abort_multipart_upload(upload.key, upload.upload_id)
        if self._registry.release(plan, PlanState.EXPIRED):
            report.expired += 1
            logger.info("upload expired", extra={"key": plan.key, "owner": plan.owner})

    def _check_stored_parts(self, plan: UploadPlan, report: SweepReport) -> None:
        if plan.kind is PlanKind.FORM or plan.state is not PlanState.OPEN or plan.upload_id is None:
            return
        try:
            stored = sum(part.size for part in self._s3.list_parts(plan.key, plan.upload_id).parts)
        except NotFound:
            return  # completed or aborted since it was listed
        if stored <= plan.reserved_bytes:
            return
        self._s3.abort_multipart_upload(plan.key, plan.upload_id)
        if self._registry.release(plan, PlanState.REFUSED):
            report.over_reservation += 1
            logger.warning(
                "upload aborted: stored parts exceed the reservation",
                extra={"key": plan.key, "owner": plan.owner, "stored": stored, "reserved": plan.reserved_bytes},
            )
