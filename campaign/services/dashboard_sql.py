"""The dashboard's one statement: sums per group and week over the organisation's published
deliveries, each with its snapshot at the post age and its tracked-link clicks up to that age.

Per delivery, the snapshot is one seek on the (delivery_id, age_seconds) index and the clicks one
seek per link on (link_id, clicked_at), as correlated subqueries of a materialised CTE; then one
GROUP BY. Portable between SQLite and PostgreSQL but for `plus_seconds`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from campaign.db import UTCDateTime
from campaign.models import (
    Campaign,
    Channel,
    Delivery,
    FramingTag,
    Message,
    Post,
    Variant,
    variant_framing_tags,
)
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services.metric_reads import LATE_FRACTION, LATE_MINIMUM_SECONDS

if TYPE_CHECKING:
    from campaign.services.dashboard import Filters


class plus_seconds(FunctionElement[dt.datetime]):
    """A stored UTC datetime plus a number of seconds, in the database."""

    type = UTCDateTime()
    inherit_cache = True
    name = "plus_seconds"


@compiles(plus_seconds)
def _plus_generic(element: plus_seconds, compiler: Any, **kw: Any) -> str:
    when, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({when} + {seconds} * INTERVAL '1' SECOND)"


@compiles(plus_seconds, "postgresql")
def _plus_postgresql(element: plus_seconds, compiler: Any, **kw: Any) -> str:
    when, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({when} + make_interval(secs => {seconds}))"


@compiles(plus_seconds, "sqlite")
def _plus_sqlite(element: plus_seconds, compiler: Any, **kw: Any) -> str:
    # The text form UTCDateTime stores (microseconds: %f gives milliseconds, then three zeros).
    when, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m-%d %H:%M:%f000', {when}, printf('%+d seconds', {seconds}))"


def _bucket(column: Any, bounds: list[dt.datetime]) -> ColumnElement[int]:
    """Which bucket a time falls in: 0 before the first bound, 1 before the second, ..."""
    if not bounds:
        return literal(0)
    return case(*[(column < bound, i) for i, bound in enumerate(bounds)], else_=len(bounds))


def totals_query(
    filters: Filters,
    period: tuple[dt.datetime, dt.datetime],
    now: dt.datetime,
    grouping: str,
    buckets: dict[str, list[dt.datetime]],
) -> Select[Any]:
    """The sums per group and week ("week": its index in `buckets["week"]`, 0 before the first
    bound): over one row per delivery (and framing tag), its snapshot and clicks at the age."""
    week_bounds = buckets["week"]
    cutoff = now - dt.timedelta(seconds=filters.age_seconds)
    audience = func.coalesce(Variant.audience, Channel.audience)
    key: Any
    label: Any
    if grouping == "channel":
        key, label = Channel.id, Channel.display_name
    elif grouping == "campaign":
        key, label = Campaign.id, Campaign.name
    elif grouping == "framing":
        key, label = FramingTag.key, FramingTag.label
    elif grouping == "audience":
        key, label = audience, audience
    elif grouping in buckets:
        key, label = _bucket(Delivery.published_at, buckets[grouping]), literal("")
    else:
        key, label = literal("all"), literal("All posts")
    measured = Delivery.published_at <= cutoff
    columns = [
        key.label("gkey"),
        label.label("glabel"),
        case((measured, 1), else_=0).label("measured"),
        case((measured, _latest_snapshot(filters.age_seconds))).label("snapshot_id"),
        case((measured, _clicks(filters.age_seconds)), else_=0).label("clicks"),
    ]
    columns.append(_bucket(Delivery.published_at, week_bounds).label("week"))
    base = _narrowed(select(*columns), filters, period, audience)
    if grouping == "campaign":
        base = base.outerjoin(Campaign, Campaign.id == Message.campaign_id)
    elif grouping == "framing":
        tag_on = FramingTag.id == variant_framing_tags.c.framing_tag_id
        if filters.framing_tags:
            tag_on = and_(tag_on, FramingTag.key.in_(filters.framing_tags))
        base = base.outerjoin(
            variant_framing_tags, variant_framing_tags.c.variant_id == Post.variant_id
        ).outerjoin(FramingTag, tag_on)
    # Materialised, so that the click count is read once per delivery, not once per use.
    rows = base.cte("base").prefix_with("MATERIALIZED")
    snap = MetricSnapshot
    has_impressions = snap.impressions.is_not(None)
    group = [rows.c.gkey, rows.c.glabel, rows.c.week]
    return (
        select(
            *group,
            func.count().label("posts"),
            func.sum(rows.c.measured).label("measured"),
            func.count(snap.id).label("with_figures"),
            func.sum(snap.impressions).label("impressions"),
            func.count(snap.impressions).label("posts_with_impressions"),
            func.sum(rows.c.clicks).label("clicks"),
            func.sum(case((has_impressions, rows.c.clicks), else_=0)).label(
                "clicks_with_impressions"
            ),
            func.sum(snap.likes).label("likes"),
            func.sum(snap.reposts).label("reposts"),
            func.sum(snap.replies).label("replies"),
        )
        .select_from(rows)
        .outerjoin(snap, snap.id == rows.c.snapshot_id)
        .group_by(*group)
    )


def _narrowed(
    query: Select[Any],
    filters: Filters,
    period: tuple[dt.datetime, dt.datetime],
    audience: ColumnElement[str],
) -> Select[Any]:
    """`query` over the organisation's deliveries published in the period, filters applied."""
    query = (
        query.select_from(Delivery)
        .join(Post, Post.id == Delivery.post_id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .outerjoin(Variant, Variant.id == Post.variant_id)
        .outerjoin(Message, Message.id == Variant.message_id)
        .where(Post.organisation_id == filters.organisation_id)
        .where(Delivery.status == "published")
        .where(Delivery.published_at >= period[0], Delivery.published_at < period[1])
    )
    if filters.channel_ids:
        query = query.where(Delivery.channel_id.in_(filters.channel_ids))
    if filters.campaign_ids:
        query = query.where(Message.campaign_id.in_(filters.campaign_ids))
    if filters.audiences:
        query = query.where(audience.in_(filters.audiences))
    if filters.framing_tags:
        tagged = (
            select(variant_framing_tags.c.variant_id)
            .join(FramingTag, FramingTag.id == variant_framing_tags.c.framing_tag_id)
            .where(FramingTag.organisation_id == filters.organisation_id)
            .where(FramingTag.key.in_(filters.framing_tags))
        )
        query = query.where(Post.variant_id.in_(tagged))
    return query


def _latest_snapshot(age_seconds: int) -> Any:
    """The delivery's snapshot read at the greatest age not beyond `age_seconds`, a reading made
    a little late counting as made at the age (as metric_reads.is_late has it); the latest read
    first among equal ages. One backward seek on the (delivery_id, age_seconds) index."""
    return (
        select(MetricSnapshot.id)
        .where(MetricSnapshot.delivery_id == Delivery.id)
        .where(MetricSnapshot.age_seconds <= age_seconds + _allowance(age_seconds))
        .order_by(
            MetricSnapshot.age_seconds.desc(),
            MetricSnapshot.collected_at.desc(),
            MetricSnapshot.id.desc(),
        )
        .limit(1)
        .correlate(Delivery)
        .scalar_subquery()
    )


def _allowance(age_seconds: int) -> int:
    """How late a reading may be and still count as made at the age (the collector's readings
    come a tick or two after it): a tenth of the age, and never less than 15 minutes."""
    return int(max(age_seconds * LATE_FRACTION, LATE_MINIMUM_SECONDS))


def _clicks(age_seconds: int) -> Any:
    """The delivery's tracked-link clicks made before it was `age_seconds` old: one seek on
    the (link_id, clicked_at) index per link."""
    return (
        select(func.count(LinkClick.id))
        .join(TrackedLink, TrackedLink.id == LinkClick.link_id)
        .where(TrackedLink.delivery_id == Delivery.id)
        .where(LinkClick.clicked_at <= plus_seconds(Delivery.published_at, age_seconds))
        .correlate(Delivery)
        .scalar_subquery()
    )
