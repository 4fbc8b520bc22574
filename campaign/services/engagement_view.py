"""What a post page shows of a post's engagement: its tracked-link clicks over time and the
platform's figures at each age, per channel, each with its source and when it was read.

Plain dataclasses out; the page and any other reader never touch the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.channels.base import PlatformMetrics
from campaign.models import Delivery
from campaign.models.engagement import TrackedLink
from campaign.services import links, metric_reads
from campaign.services.metric_reads import CollectionStatus, SnapshotRow

# The figures as the page names them, in the order it shows them.
FIGURE_LABELS = {
    "impressions": "Impressions",
    "link_clicks": "Link clicks (platform)",
    "likes": "Likes",
    "reposts": "Reposts",
    "replies": "Replies",
    "quotes": "Quotes",
    "bookmarks": "Bookmarks",
    "profile_clicks": "Profile clicks",
}
SOURCE_LABELS = {"platform": "the network", "manual": "entered by hand", "csv": "CSV import"}


@dataclass(frozen=True)
class DeliveryEngagement:
    """One channel's engagement for the post."""

    delivery_id: int
    channel_name: str
    published_at: dt.datetime | None
    clicks: int
    unique_clicks: int
    bot_hits: int
    snapshots: list[SnapshotRow]
    status: CollectionStatus | None
    # (short link as published, where it leads) for each tracked link of the delivery.
    tracked_links: list[tuple[str, str]]
    # Figures this network never reports (shown as "not reported", never as 0).
    figures_shown: tuple[str, ...]

    @property
    def not_found(self) -> bool:
        return self.status is not None and self.status.not_found_at is not None


@dataclass(frozen=True)
class DayClicks:
    day: dt.date
    # Per channel name, in the order of PostEngagement.channels.
    clicks: tuple[int, ...]
    unique: tuple[int, ...]


@dataclass
class PostEngagement:
    deliveries: list[DeliveryEngagement] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    days: list[DayClicks] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return any(d.clicks or d.snapshots or d.bot_hits for d in self.deliveries)

    def chart_data(self) -> dict[str, object]:
        """The clicks-per-day series for the chart (the page also shows them as a table)."""
        return {
            "labels": [day.day.isoformat() for day in self.days],
            "series": [
                {"name": name, "values": [day.clicks[i] for day in self.days]}
                for i, name in enumerate(self.channels)
            ],
        }


def post_engagement(
    session: Session, deliveries: Sequence[Delivery], link_base_url: str
) -> PostEngagement:
    """The engagement of a post's deliveries (already scoped to the viewer's organisation)."""
    shown = [d for d in deliveries if d.status == "published"]
    found = PostEngagement(channels=[d.channel.display_name for d in shown])
    if not shown:
        return found
    ids = [d.id for d in shown]
    base = link_base_url.rstrip("/")
    tracked: dict[int, list[tuple[str, str]]] = {}
    for delivery_id, code, target in session.execute(
        select(TrackedLink.delivery_id, TrackedLink.code, TrackedLink.target_url)
        .where(TrackedLink.delivery_id.in_(ids))
        .order_by(TrackedLink.id)
    ):
        tracked.setdefault(delivery_id, []).append((f"{base}/l/{code}", target))
    counts = links.click_counts(session, ids)
    snapshots = metric_reads.post_snapshots(session, shown[0].post_id)
    status = metric_reads.collection_status(session, ids)
    per_day: dict[dt.date, tuple[list[int], list[int]]] = {}
    for index, delivery in enumerate(shown):
        for day, clicks, unique in links.clicks_by_day(session, delivery.id):
            totals = per_day.setdefault(day, ([0] * len(shown), [0] * len(shown)))
            totals[0][index] += clicks
            totals[1][index] += unique
        count = counts.get(delivery.id, links.ClickCounts())
        rows = snapshots.get(delivery.id, [])
        found.deliveries.append(
            DeliveryEngagement(
                delivery_id=delivery.id,
                channel_name=delivery.channel.display_name,
                published_at=delivery.published_at,
                clicks=count.clicks,
                unique_clicks=count.unique,
                bot_hits=count.bot_hits,
                snapshots=rows,
                status=status.get(delivery.id),
                tracked_links=tracked.get(delivery.id, []),
                figures_shown=_reported(rows),
            )
        )
    found.days = _filled(per_day, len(shown))
    return found


def _reported(rows: Sequence[SnapshotRow]) -> tuple[str, ...]:
    """The figures any of these snapshots reports, in the page's order (all when none)."""
    if not rows:
        return tuple(FIGURE_LABELS)
    return tuple(
        name
        for name in FIGURE_LABELS
        if any(_figure(row.figures, name) is not None for row in rows)
    )


def _figure(figures: PlatformMetrics, name: str) -> int | None:
    value: int | None = getattr(figures, name)
    return value


def _filled(per_day: dict[dt.date, tuple[list[int], list[int]]], width: int) -> list[DayClicks]:
    """Every day from the first click to the last, days without clicks as zeros (a chart with
    gaps left out would join its points across them)."""
    if not per_day:
        return []
    first, last = min(per_day), max(per_day)
    days = []
    day = first
    while day <= last:
        clicks, unique = per_day.get(day, ([0] * width, [0] * width))
        days.append(DayClicks(day, tuple(clicks), tuple(unique)))
        day += dt.timedelta(days=1)
    return days
