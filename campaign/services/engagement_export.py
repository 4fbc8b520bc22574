"""All of an organisation's engagement as one CSV: every snapshot, and our tracked-link clicks.

One line per snapshot (any source, any window) in the import's columns, `clicks` being the
platform's link clicks; then, per delivery with a tracked link, one line of source
"tracked link" whose `clicks` is our own count at export time (`unique_clicks` beside it).
The export-only columns (channel, window, source, delivery_id, unique_clicks) are ignored on
import, and tracked-link lines are skipped, so an export can be imported again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import Channel, Delivery, Post
from campaign.models.engagement import TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import links
from campaign.services.engagement_csv import EXPORT_COLUMNS, FIGURES, TRACKED_SOURCE, write
from campaign.services.engagement_import import CSV_TO_FIELD


def export(session: Session, organisation_id: int, now: dt.datetime) -> str:
    """The organisation's engagement as CSV text (header first), cells defused."""
    lines: list[tuple[tuple[int, int, int], list[str]]] = []
    rows = session.execute(
        select(MetricSnapshot, Delivery.post_id, Delivery.external_id, Channel.display_name)
        .join(Delivery, Delivery.id == MetricSnapshot.delivery_id)
        .join(Post, Post.id == Delivery.post_id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(Post.organisation_id == organisation_id)
        .order_by(
            Delivery.post_id,
            Delivery.id,
            MetricSnapshot.window_seconds.is_(None),
            MetricSnapshot.window_seconds,
            MetricSnapshot.source,
        )
    ).all()
    for order, (snapshot, post_id, external_id, channel) in enumerate(rows):
        values = {name: _count(getattr(snapshot, CSV_TO_FIELD.get(name, name))) for name in FIGURES}
        line = _line(
            post_id,
            external_id,
            snapshot.collected_at,
            values,
            "",
            channel,
            snapshot.window,
            snapshot.source,
            snapshot.delivery_id,
        )
        lines.append(((post_id, snapshot.delivery_id, order), line))
    tracked = session.execute(
        select(Delivery.id, Delivery.post_id, Delivery.external_id, Channel.display_name)
        .join(Post, Post.id == Delivery.post_id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(Post.organisation_id == organisation_id)
        .where(Delivery.id.in_(select(TrackedLink.delivery_id)))
        .order_by(Delivery.id)
    ).all()
    counts = links.click_counts(session, [row[0] for row in tracked])
    for delivery_id, post_id, external_id, channel in tracked:
        count = counts.get(delivery_id, links.ClickCounts())
        values = {name: "" for name in FIGURES}
        values["clicks"] = str(count.clicks)
        line = _line(
            post_id,
            external_id,
            now,
            values,
            str(count.unique),
            channel,
            "",
            TRACKED_SOURCE,
            delivery_id,
        )
        lines.append(((post_id, delivery_id, len(rows)), line))
    lines.sort(key=lambda item: item[0])
    return write([list(EXPORT_COLUMNS), *(line for _key, line in lines)])


def _line(
    post_id: int,
    external_id: str | None,
    collected_at: dt.datetime,
    figures: dict[str, str],
    unique_clicks: str,
    channel: str,
    window: str,
    source: str,
    delivery_id: int,
) -> list[str]:
    by_name = {
        "post_id": str(post_id),
        "external_id": external_id or "",
        "collected_at": collected_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        **figures,
        "unique_clicks": unique_clicks,
        "channel": channel,
        "window": window,
        "source": source,
        "delivery_id": str(delivery_id),
    }
    return [by_name[name] for name in EXPORT_COLUMNS]


def _count(value: int | None) -> str:
    return "" if value is None else str(value)
