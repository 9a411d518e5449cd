"""How far behind the registry programs' read model is, for ``/metrics`` and ``/readyz``.

Two figures, both of this process's consumer (an API-only process has none and says so):

* ``simpul_read_model_lag_seconds{service="programs", model="registry"}``: now minus the time of
  the newest registry event whose effect this process committed (NaN until the first). It also
  grows while the registry is quiet, so read it with the next one.
* ``simpul_consumer_lag_records{consumer, topic, partition}`` (:mod:`shared.consumer`): registry
  records on the broker not handled yet. 0 on every partition is caught up, whatever the
  seconds say.

An event's time is the registry's clock: one from the future counts as applied now, so a skewed
clock never makes the model look ahead of time.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.service import ReadinessDetails, ServiceRuntime

__all__ = [
    "READ_MODEL_LAG",
    "REGISTRY_FRESHNESS",
    "Freshness",
    "count_when_committed",
    "read_model_details",
]

READ_MODEL_LAG = Gauge(
    "simpul_read_model_lag_seconds",
    "Now minus the time of the newest source event applied to the read model (NaN: none yet)",
    ["service", "model"],
)


class Freshness:
    """The time of the newest event applied to one read model in this process."""

    def __init__(self) -> None:
        self.newest: datetime | None = None

    def applied(self, event_time: datetime, *, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        at = event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)
        at = min(at, now)
        if self.newest is None or at > self.newest:
            self.newest = at

    def lag_seconds(self, *, now: datetime | None = None) -> float | None:
        if self.newest is None:
            return None
        return max(((now or datetime.now(UTC)) - self.newest).total_seconds(), 0.0)


REGISTRY_FRESHNESS = Freshness()


def _registry_lag() -> float:
    seconds = REGISTRY_FRESHNESS.lag_seconds()
    return math.nan if seconds is None else seconds


READ_MODEL_LAG.labels(service="programs", model="registry").set_function(_registry_lag)


def count_when_committed(session: AsyncSession, event_time: datetime) -> None:
    """Count the registry event of ``event_time`` as applied once ``session`` commits (a
    handler that fails, or a transaction rolled back, counts nothing)."""

    def committed(_: Session) -> None:
        REGISTRY_FRESHNESS.applied(event_time)

    event.listen(session.sync_session, "after_commit", committed, once=True)


def read_model_details(topics: Collection[str]) -> ReadinessDetails:
    """``/readyz`` details of the registry read model fed by ``topics`` (see the module)."""

    async def details(runtime: ServiceRuntime) -> dict[str, Any]:
        lag_seconds = REGISTRY_FRESHNESS.lag_seconds()
        newest = REGISTRY_FRESHNESS.newest
        registry: dict[str, Any] = {
            "lag_seconds": None if lag_seconds is None else round(lag_seconds, 3),
            "newest_event_at": None if newest is None else newest.isoformat(),
        }
        runners = [r for r in runtime.runners if set(r.topics) & set(topics)]
        if not runners:
            registry["consumer"] = "not running in this process"
            return {"read_model": {"registry": registry}}
        behind = {
            f"{tp.topic}/{tp.partition}": records
            for runner in runners
            for tp, records in sorted(runner.lag().items())
            if tp.topic in topics
        }
        registry["lag_records"] = behind
        # False until the consumer has fetched once (nothing measured yet).
        registry["caught_up"] = bool(behind) and not any(behind.values())
        return {"read_model": {"registry": registry}}

    return details
