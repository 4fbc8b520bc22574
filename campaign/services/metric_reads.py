"""Reading snapshots back: per post (the post page), at an age (the reports), and flags.

Plain dataclasses out, so pages, the API and the reports never touch the rows themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaign.channels.base import PlatformMetrics
from campaign.models import Delivery
from campaign.models.metrics import METRIC_FIELDS, MetricCollectionState, MetricSnapshot

# A reading is late when it was made this much past its window's age, or more: a tenth of the
# window, and never less than 15 minutes (a tick or two of an idle worker).
LATE_FRACTION = 0.1
LATE_MINIMUM_SECONDS = 900


def is_late(window_seconds: int | None, age_seconds: int) -> bool:
    """Whether a reading for a window was made too far past its age to compare like for like."""
    if window_seconds is None:
        return False
    allowed = max(window_seconds * LATE_FRACTION, LATE_MINIMUM_SECONDS)
    return age_seconds - window_seconds > allowed


@dataclass(frozen=True)
class SnapshotRow:
    """One stored snapshot, as pages and reports show it."""

    delivery_id: int
    window: str
    window_seconds: int | None
    source: str
    collected_at: dt.datetime
    age_seconds: int
    figures: PlatformMetrics

    @property
    def late(self) -> bool:
        return is_late(self.window_seconds, self.age_seconds)


@dataclass(frozen=True)
class CollectionStatus:
    """What the collector knows about a delivery (None fields: not yet)."""

    delivery_id: int
    next_collect_at: dt.datetime | None
    last_collected_at: dt.datetime | None
    last_error: str | None
    not_found_at: dt.datetime | None


def _row(snapshot: MetricSnapshot) -> SnapshotRow:
    return SnapshotRow(
        delivery_id=snapshot.delivery_id,
        window=snapshot.window,
        window_seconds=snapshot.window_seconds,
        source=snapshot.source,
        collected_at=snapshot.collected_at,
        age_seconds=snapshot.age_seconds,
        figures=PlatformMetrics(**{name: getattr(snapshot, name) for name in METRIC_FIELDS}),
    )


def post_snapshots(session: Session, post_id: int) -> dict[int, list[SnapshotRow]]:
    """Each of the post's deliveries' snapshots, by window age ("latest" last), then source."""
    snapshots = session.scalars(
        select(MetricSnapshot)
        .join(Delivery, Delivery.id == MetricSnapshot.delivery_id)
        .where(Delivery.post_id == post_id)
        .order_by(
            MetricSnapshot.delivery_id,
            MetricSnapshot.window_seconds.is_(None),
            MetricSnapshot.window_seconds,
            MetricSnapshot.source,
        )
    )
    found: dict[int, list[SnapshotRow]] = {}
    for snapshot in snapshots:
        found.setdefault(snapshot.delivery_id, []).append(_row(snapshot))
    return found


def snapshots_at_age(
    session: Session, delivery_ids: Sequence[int], age_seconds: int, source: str = "platform"
) -> dict[int, SnapshotRow]:
    """Per delivery, the snapshot read at the greatest age not beyond `age_seconds`.

    Served by the (delivery_id, age_seconds) index; deliveries with no such reading are absent.
    """
    if not delivery_ids:
        return {}
    ranked = (
        select(
            MetricSnapshot.id,
            func.row_number()
            .over(
                partition_by=MetricSnapshot.delivery_id,
                order_by=(MetricSnapshot.age_seconds.desc(), MetricSnapshot.collected_at.desc()),
            )
            .label("rank"),
        )
        .where(MetricSnapshot.delivery_id.in_(list(delivery_ids)))
        .where(MetricSnapshot.age_seconds <= age_seconds)
        .where(MetricSnapshot.source == source)
        .subquery()
    )
    snapshots = session.scalars(
        select(MetricSnapshot)
        .join(ranked, ranked.c.id == MetricSnapshot.id)
        .where(ranked.c.rank == 1)
    )
    return {snapshot.delivery_id: _row(snapshot) for snapshot in snapshots}


def collection_status(session: Session, delivery_ids: Sequence[int]) -> dict[int, CollectionStatus]:
    """The collector's state per delivery (absent: never read); `not_found_at` is the R6 flag."""
    if not delivery_ids:
        return {}
    states = session.scalars(
        select(MetricCollectionState).where(
            MetricCollectionState.delivery_id.in_(list(delivery_ids))
        )
    )
    return {
        state.delivery_id: CollectionStatus(
            state.delivery_id,
            state.next_collect_at,
            state.last_collected_at,
            state.last_error,
            state.not_found_at,
        )
        for state in states
    }
