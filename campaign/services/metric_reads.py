"""Reading snapshots back: per post (the post page), at an age (the reports), and flags.

Plain dataclasses out, so pages, the API and the reports never touch the rows themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, case, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from campaign.channels.base import PlatformMetrics
from campaign.models import Delivery
from campaign.models.metrics import METRIC_FIELDS, MetricCollectionState, MetricSnapshot

# A reading is late when it was made this much past its window's age, or more: a tenth of the
# window, and never less than 15 minutes (a tick or two of an idle worker).
LATE_FRACTION = 0.1
LATE_MINIMUM_SECONDS = 900


def lateness_allowed(window_seconds: int) -> int:
    """How far past an age a reading may be made and still count as the reading at that age."""
    return int(max(window_seconds * LATE_FRACTION, LATE_MINIMUM_SECONDS))


def is_late(window_seconds: int | None, age_seconds: int) -> bool:
    """Whether a reading for a window was made too far past its age to compare like for like."""
    if window_seconds is None:
        return False
    return age_seconds - window_seconds > lateness_allowed(window_seconds)


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


_ROW_COLUMNS = (
    "delivery_id",
    "window",
    "window_seconds",
    "source",
    "collected_at",
    "age_seconds",
    *METRIC_FIELDS,
)


def _row(snapshot: Any) -> SnapshotRow:
    """A snapshot row (an object, or a result row with the same names) as plain data."""
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


# One alias for every statement, so that SQLAlchemy's compiled-statement cache recognises them.
_CHOSEN = aliased(MetricSnapshot, name="chosen_snapshot")


def _allowance(age_seconds: int | ColumnElement[int]) -> int | ColumnElement[int]:
    """`lateness_allowed` in Python for a number, in SQL for a column (a tenth, at least 900)."""
    if isinstance(age_seconds, int):
        return lateness_allowed(age_seconds)
    threshold = LATE_MINIMUM_SECONDS * 10  # a tenth of the age is larger from here on
    # Floor division keeps the bound an integer, so the comparison stays an index range seek
    # (a float bound makes PostgreSQL cast age_seconds and scan every reading).
    return case((age_seconds > threshold, age_seconds // 10), else_=LATE_MINIMUM_SECONDS)


def snapshot_at_age_id(
    delivery_id: ColumnElement[int] | InstrumentedAttribute[int],
    age_seconds: int | ColumnElement[int],
    source: str | None = "platform",
) -> ScalarSelect[int]:
    """SQL for the id of the delivery's snapshot at the greatest age not beyond `age_seconds`.

    Correlated with the outer query's `delivery_id` column, so reports can read the chosen
    snapshot in the same statement as the deliveries. `source` None takes any source; ties at
    one age go to the latest read, then the newest row, so the order rows were stored in changes
    nothing. One backward seek on the (delivery_id, age_seconds) index per delivery.
    """
    inner = _CHOSEN
    pick = (
        select(inner.id)
        .where(inner.delivery_id == delivery_id)
        .where(inner.age_seconds <= age_seconds + _allowance(age_seconds))
        .order_by(inner.age_seconds.desc(), inner.collected_at.desc(), inner.id.desc())
        .limit(1)
    )
    if source is not None:
        pick = pick.where(inner.source == source)
    return pick.scalar_subquery()


def snapshots_at_age(
    session: Session,
    delivery_ids: Sequence[int],
    age_seconds: int,
    source: str | None = "platform",
) -> dict[int, SnapshotRow]:
    """Per delivery, the snapshot read at the greatest age not beyond `age_seconds`, where a
    reading made a little late (within `lateness_allowed`, as the collector's always are) counts
    as made at its age: the 24 h reading taken at 24 h 02 min is the 24 h figure.

    `source` None takes any source. Ties at one age go to the latest read (then the newest
    row), so snapshots stored out of order change nothing. Each delivery is one backward seek
    on the (delivery_id, age_seconds) index, never a scan of its other readings; deliveries
    with no such reading are absent.
    """
    if not delivery_ids:
        return {}
    # Imported here: the publishing engine is a heavier module than the readers need at import.
    from campaign.services.publishing import ids_in

    chosen = (
        select(snapshot_at_age_id(Delivery.id, age_seconds, source).label("snapshot_id"))
        .where(ids_in(Delivery.id, session.get_bind().dialect.name))
        .subquery()
    )
    # Columns, not objects: a report reads a thousand of these at a time.
    rows = session.execute(
        select(*(getattr(MetricSnapshot, name) for name in _ROW_COLUMNS)).join(
            chosen, chosen.c.snapshot_id == MetricSnapshot.id
        ),
        {"ids": sorted(set(delivery_ids))},
    )
    return {row.delivery_id: _row(row) for row in rows}


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
