"""Per-post figures of an experiment's arms at one post age, read in a few indexed queries.

For each post: its published deliveries, the latest metric snapshot at or before the age
(`metric_reads.snapshots_at_age`, any source), and tracked-link clicks made up to the age
(clicked_at <= published_at + age). Clicks come from the app's tracked links where the delivery
has one (first-party, bots left out, exact timing); otherwise from the network's own link-click
figure in the snapshot; otherwise they are unknown. Posts are never queried one by one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Interval, bindparam, exists, func, select
from sqlalchemy.orm import Session

from campaign.models import Channel, Delivery
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import metric_reads
from campaign.services.publishing import ids_in

CLICKS_PER_IMPRESSION = "clicks_per_impression"
CLICKS_PER_POST = "clicks_per_post"
METRICS = (CLICKS_PER_IMPRESSION, CLICKS_PER_POST)
# Parts of the day a post can go out in; posts in the same part of a weekday (or weekend) day
# on the same channel count as comparable slots.
DAY_PARTS = ((6, "morning"), (12, "afternoon"), (17, "evening"), (22, "night"))


@dataclass(frozen=True)
class PostFigures:
    """One published post's figures at the report age (None: not known at that age)."""

    post_id: int
    slot: str
    impressions: int | None
    clicks: int | None
    interactions: int | None
    # "tracked" (the app's links), "platform" (the network's link clicks), "mixed" or None.
    clicks_source: str | None

    def measured(self, metric: str) -> bool:
        """Whether this post has the figures the metric needs."""
        if self.clicks is None:
            return False
        if metric == CLICKS_PER_IMPRESSION:
            # More clicks than views is not a rate (clicks from a link shared elsewhere).
            return self.impressions is not None and self.clicks <= self.impressions
        return True


@dataclass(frozen=True)
class ArmTotals:
    """One arm: its posts, the published ones with their figures, and totals over measured."""

    name: str
    post_ids: tuple[int, ...]
    published: tuple[PostFigures, ...]
    metric: str

    @property
    def measured(self) -> tuple[PostFigures, ...]:
        return tuple(p for p in self.published if p.measured(self.metric))

    @property
    def impressions(self) -> int:
        return sum(p.impressions or 0 for p in self.measured)

    @property
    def clicks(self) -> int:
        return sum(p.clicks or 0 for p in self.measured)


def slot_label(channel_name: str, at: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """'Careers on X, weekday morning': posts sharing a label are compared with each other."""
    local = at.astimezone(zone)
    part = "night"
    for start, name in DAY_PARTS:
        if local.hour >= start:
            part = name
    day = "weekend" if local.weekday() >= 5 else "weekday"
    return f"{channel_name}, {day} {part}"


def _cutoff(dialect: str) -> Any:
    """SQL for the delivery's published_at plus the age (parameter `after`), in clicked_at's
    stored form."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; %f gives milliseconds, so pad to microseconds.
        shifted = func.strftime("%Y-%m-%d %H:%M:%f", Delivery.published_at, bindparam("after"))
        return shifted.op("||")("000")
    return Delivery.published_at + bindparam("after", type_=Interval())


def _statements(dialect: str) -> tuple[Any, Any]:
    """(deliveries with snapshot id and tracked clicks, chosen snapshots' figures), built once
    per dialect so that each report pays neither construction nor compilation."""
    found = _STATEMENTS.get(dialect)
    if found is not None:
        return found
    linked = exists().where(TrackedLink.delivery_id == Delivery.id)
    clicks = (
        select(func.count(LinkClick.id))
        .join(TrackedLink, TrackedLink.id == LinkClick.link_id)
        .where(TrackedLink.delivery_id == Delivery.id)
        .where(LinkClick.clicked_at <= _cutoff(dialect))
        .scalar_subquery()
    )
    age = bindparam("age", type_=Integer())
    deliveries = (
        select(
            Delivery.id,
            Delivery.post_id,
            Delivery.published_at,
            Channel.display_name,
            metric_reads.snapshot_at_age_id(Delivery.id, age, None).label("snapshot_id"),
            linked.label("linked"),
            clicks.label("tracked"),
        )
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(ids_in(Delivery.post_id, dialect))
        .where(Delivery.status == "published")
        .where(Delivery.published_at.is_not(None))
        .order_by(Delivery.id)
    )
    snap = MetricSnapshot
    figures = select(
        snap.id, snap.impressions, snap.link_clicks, snap.likes, snap.reposts, snap.replies
    ).where(ids_in(snap.id, dialect))
    _STATEMENTS[dialect] = (deliveries, figures)
    return deliveries, figures


_STATEMENTS: dict[str, tuple[Any, Any]] = {}


def _deliveries(
    session: Session, post_ids: list[int], age_seconds: int
) -> tuple[Sequence[Any], dict[int, Any]]:
    """Each published delivery of the posts with its chosen snapshot id and tracked clicks, then
    the chosen snapshots' figures by id: two statements however many posts.

    Per delivery the snapshot id is one index seek (metric_reads.snapshot_at_age_id) and the
    tracked clicks an index range on (link_id, clicked_at).
    """
    connection = session.connection()
    dialect = connection.dialect.name
    deliveries_sql, figures_sql = _statements(dialect)
    after: Any = (
        f"+{age_seconds} seconds" if dialect == "sqlite" else dt.timedelta(seconds=age_seconds)
    )
    deliveries = connection.execute(
        deliveries_sql, {"ids": post_ids, "age": age_seconds, "after": after}
    ).all()
    chosen = sorted({d.snapshot_id for d in deliveries if d.snapshot_id is not None})
    figures = {}
    if chosen:
        # .all(): fetching every row at once is several times faster than iterating the cursor.
        figures = {row.id: row for row in connection.execute(figures_sql, {"ids": chosen}).all()}
    return deliveries, figures


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def arm_totals(
    session: Session,
    arms: Sequence[tuple[str, Sequence[int]]],
    age_seconds: int,
    metric: str,
    timezone: str = "UTC",
) -> list[ArmTotals]:
    """Each arm's published posts with impressions, clicks and slot at `age_seconds`.

    A post counts as published when any of its deliveries is; its figures add up over its
    published deliveries and are unknown when any of them lacks the figure.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    post_ids = sorted({p for _, ids in arms for p in ids})
    deliveries, snapshots = _deliveries(session, post_ids, age_seconds) if post_ids else ([], {})
    figures: dict[int, PostFigures] = {}
    for d in deliveries:
        found = snapshots.get(d.snapshot_id)
        impressions = found.impressions if found is not None else None
        if d.linked:
            clicks: int | None = int(d.tracked)
            source: str | None = "tracked"
        else:
            clicks = found.link_clicks if found is not None else None
            source = "platform" if clicks is not None else None
        interactions = None
        if found is not None:
            interactions = sum(v or 0 for v in (found.likes, found.reposts, found.replies))
        before = figures.get(d.post_id)
        if before is None:
            figures[d.post_id] = PostFigures(
                d.post_id,
                slot_label(d.display_name, d.published_at, zone),
                impressions,
                clicks,
                interactions,
                source,
            )
        else:
            figures[d.post_id] = PostFigures(
                d.post_id,
                before.slot,
                _add(before.impressions, impressions),
                _add(before.clicks, clicks),
                _add(before.interactions, interactions),
                before.clicks_source if before.clicks_source == source else "mixed",
            )
    return [
        ArmTotals(
            name,
            tuple(ids),
            tuple(figures[p] for p in ids if p in figures),
            metric,
        )
        for name, ids in arms
    ]
