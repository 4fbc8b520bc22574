"""Per-post figures of an experiment's arms at one post age, read in a few indexed queries.

For each post: its published deliveries, the latest metric snapshot at or before the age
(`metric_reads.snapshots_at_age`, any source), and tracked-link clicks made up to the age
(clicked_at <= published_at + age). Clicks come from the app's tracked links where the delivery
has one (first-party, bots left out, exact timing); otherwise from the network's own link-click
figure in the snapshot; otherwise they are unknown. Posts are never queried one by one.

`arm_totals` gives each post's figures (the experiment report needs them: post-level analysis,
slots, posts left out); `rate_sums` gives only each arm's clicks-per-impression totals, added
up in the database in one statement (the framing report, over every experiment).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Interval, and_, bindparam, case, exists, func, select
from sqlalchemy.orm import Session

from campaign.models import Channel, Delivery, ExperimentArm, ExperimentSlot
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


def _tracked_clicks(dialect: str) -> Any:
    """SQL for the delivery's tracked-link clicks made up to the age (parameter `after`)."""
    return (
        select(func.count(LinkClick.id))
        .join(TrackedLink, TrackedLink.id == LinkClick.link_id)
        .where(TrackedLink.delivery_id == Delivery.id)
        .where(LinkClick.clicked_at <= _cutoff(dialect))
        .scalar_subquery()
    )


def _statements(dialect: str) -> tuple[Any, Any]:
    """(deliveries with snapshot id and tracked clicks, chosen snapshots' figures), built once
    per dialect so that each report pays neither construction nor compilation."""
    found = _STATEMENTS.get(dialect)
    if found is not None:
        return found
    linked = exists().where(TrackedLink.delivery_id == Delivery.id)
    clicks = _tracked_clicks(dialect)
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


def _after(dialect: str, age_seconds: int) -> Any:
    """The `after` parameter of `_cutoff`: a SQLite date modifier or a PostgreSQL interval."""
    if dialect == "sqlite":
        return f"+{age_seconds} seconds"
    return dt.timedelta(seconds=age_seconds)


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
    deliveries = connection.execute(
        deliveries_sql, {"ids": post_ids, "age": age_seconds, "after": _after(dialect, age_seconds)}
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


@dataclass(frozen=True)
class RateSums:
    """One arm's clicks-per-impression totals over its measured posts (as `ArmTotals` counts
    them), without the per-post records."""

    arm_id: int
    impressions: int
    clicks: int


def _sums_statement(dialect: str) -> Any:
    """Per arm of the experiments `ids`, the impressions and clicks of its measured posts at
    the age: `arm_totals`' figures for clicks per impression, added up in the database.

    Per delivery (materialised, so each seek and click count runs once): the chosen snapshot
    (`metric_reads.snapshot_at_age_id`, any source) and the tracked clicks up to the age. Per
    post: the sums over its published deliveries, unknown when any delivery lacks the figure;
    clicks are tracked where the delivery has a tracked link, else the snapshot's link clicks.
    A post counts when both figures are known and clicks do not exceed impressions. Built once
    per dialect.
    """
    found = _SUMS.get(dialect)
    if found is not None:
        return found
    age = bindparam("age", type_=Integer())
    slots = ExperimentSlot
    chosen = (
        select(
            Delivery.post_id,
            metric_reads.snapshot_at_age_id(Delivery.id, age, None).label("snapshot_id"),
            exists().where(TrackedLink.delivery_id == Delivery.id).label("linked"),
            _tracked_clicks(dialect).label("tracked"),
        )
        .where(
            Delivery.post_id.in_(select(slots.post_id).where(ids_in(slots.experiment_id, dialect)))
        )
        .where(Delivery.status == "published")
        .where(Delivery.published_at.is_not(None))
        .cte("chosen")
        .prefix_with("MATERIALIZED")
    )
    snap = MetricSnapshot
    delivery_clicks = case((chosen.c.linked, chosen.c.tracked), else_=snap.link_clicks)

    def known_sum(value: Any) -> Any:
        # NULL when any delivery of the post lacks the figure (count skips NULLs).
        return case((func.count(value) == func.count(), func.sum(value)))

    posts = (
        select(
            chosen.c.post_id,
            known_sum(snap.impressions).label("impressions"),
            known_sum(delivery_clicks).label("clicks"),
        )
        .select_from(chosen)
        .outerjoin(snap, snap.id == chosen.c.snapshot_id)
        .group_by(chosen.c.post_id)
        .subquery("post_figures")
    )
    arm = ExperimentArm
    statement = (
        select(
            slots.arm_id,
            func.sum(posts.c.impressions).label("impressions"),
            func.sum(posts.c.clicks).label("clicks"),
        )
        .join(arm, and_(arm.id == slots.arm_id, arm.experiment_id == slots.experiment_id))
        .join(posts, posts.c.post_id == slots.post_id)
        .where(ids_in(slots.experiment_id, dialect))
        .where(posts.c.impressions.is_not(None))
        .where(posts.c.clicks.is_not(None))
        .where(posts.c.clicks <= posts.c.impressions)
        .group_by(slots.arm_id)
    )
    _SUMS[dialect] = statement
    return statement


_SUMS: dict[str, Any] = {}


def rate_sums(
    session: Session, experiment_ids: Sequence[int], age_seconds: int
) -> dict[int, RateSums]:
    """Per arm id of these experiments, clicks-per-impression totals at `age_seconds`, in one
    statement. Equal to `arm_totals(...)`'s `impressions` and `clicks` per arm for
    CLICKS_PER_IMPRESSION; arms without a measured post are absent (zero). Reads through the
    session's connection, so pending ORM changes must be flushed first (the framing report's
    experiments query, an ORM execute, does)."""
    if not experiment_ids:
        return {}
    connection = session.connection()
    dialect = connection.dialect.name
    rows = connection.execute(
        _sums_statement(dialect),
        {
            "ids": sorted(set(experiment_ids)),
            "age": age_seconds,
            "after": _after(dialect, age_seconds),
        },
    ).all()
    return {row.arm_id: RateSums(row.arm_id, int(row.impressions), int(row.clicks)) for row in rows}
