"""When a post goes out: queue slots, blackouts and boosts, the duplicate guard, X's price.

All wall times are the organisation's; everything stored or compared is aware UTC.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import Channel, Delivery, KeyDate, Post, QueueSlot
from campaign.services import NotFound, ServiceError
from campaign.services.local_time import Resolved, Slot, as_zone, next_free_slot
from campaign.services.text_rules import normalised

# X's pay-per-use price for creating a post (../shared/research/platforms.md, 2026).
X_PRICE_PLAIN = Decimal("0.015")
X_PRICE_WITH_LINK = Decimal("0.20")
# Texts at least this similar (difflib ratio on normalised, case-folded text) are near-identical.
NEAR_IDENTICAL = 0.9
QUEUE_HORIZON_DAYS = 120


@dataclass(frozen=True)
class Duplicate:
    """An earlier post on the same channel, close in time, with the same or nearly the same text."""

    post_id: int
    channel_name: str
    due_at: dt.datetime
    identical: bool


def channel_slots(session: Session, channel_id: int) -> list[Slot]:
    rows = session.execute(
        select(QueueSlot.weekday, QueueSlot.at)
        .where(QueueSlot.channel_id == channel_id)
        .order_by(QueueSlot.weekday, QueueSlot.at)
    )
    return [Slot(weekday, at) for weekday, at in rows]


def taken_times(
    session: Session, channel_id: int, exclude_post_id: int | None = None
) -> set[dt.datetime]:
    """The times already used on a channel by deliveries that still stand."""
    query = select(Delivery.due_at).where(
        Delivery.channel_id == channel_id, Delivery.status.not_in(("cancelled", "missed"))
    )
    if exclude_post_id is not None:
        query = query.where(Delivery.post_id != exclude_post_id)
    return set(session.scalars(query))


def next_queue_time(
    session: Session,
    channel: Channel,
    zone: str,
    after: dt.datetime,
    exclude_post_id: int | None = None,
    also_taken: Iterable[dt.datetime] = (),
) -> Resolved:
    """The channel's first free queue slot after `after`; ServiceError when it has none."""
    slots = channel_slots(session, channel.id)
    if not slots:
        raise ServiceError(
            f"{channel.display_name} has no queue slots yet: add some under Settings → Queue, "
            "or pick a date and time."
        )
    taken = taken_times(session, channel.id, exclude_post_id) | set(also_taken)
    found = next_free_slot(slots, zone, after, taken, horizon_days=QUEUE_HORIZON_DAYS)
    if found is None:
        raise ServiceError(
            f"Every queue slot of {channel.display_name} in the next {QUEUE_HORIZON_DAYS} days "
            "is taken: add slots or pick a date and time."
        )
    return found


def key_dates_between(
    session: Session, organisation_id: int, first: dt.date, last: dt.date
) -> list[KeyDate]:
    """Key dates overlapping [first, last], by start date."""
    return list(
        session.scalars(
            select(KeyDate)
            .where(
                KeyDate.organisation_id == organisation_id,
                KeyDate.starts_on <= last,
                KeyDate.ends_on >= first,
            )
            .order_by(KeyDate.starts_on, KeyDate.id)
        )
    )


def blackouts_covering(
    session: Session, organisation_id: int, zone: str, instants: Sequence[dt.datetime]
) -> list[KeyDate]:
    """The blackout key dates that any of these instants falls in, by local date."""
    tz = as_zone(zone)
    days = {instant.astimezone(tz).date() for instant in instants}
    if not days:
        return []
    found = key_dates_between(session, organisation_id, min(days), max(days))
    return [k for k in found if k.effect == "blackout" and any(k.covers(d) for d in days)]


def describe_key_date(key_date: KeyDate) -> str:
    if key_date.starts_on == key_date.ends_on:
        span = f"{key_date.starts_on:%-d %b %Y}"
    else:
        span = f"{key_date.starts_on:%-d %b} – {key_date.ends_on:%-d %b %Y}"
    return f"“{key_date.title}” ({span})"


def find_duplicates(
    session: Session,
    channel_ids: Sequence[int],
    text: str,
    due_at: dt.datetime,
    window: dt.timedelta,
    exclude_post_id: int | None = None,
) -> list[Duplicate]:
    """Posts on the same channels within `window` of `due_at` with the same or similar text."""
    if not channel_ids or not text.strip():
        return []
    query = (
        select(Post.id, Post.text, Channel.display_name, Delivery.due_at)
        .join(Delivery, Delivery.post_id == Post.id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(
            Delivery.channel_id.in_(list(channel_ids)),
            Delivery.status.not_in(("cancelled", "failed", "missed")),
            Delivery.due_at >= due_at - window,
            Delivery.due_at <= due_at + window,
        )
        .order_by(Delivery.due_at)
    )
    if exclude_post_id is not None:
        query = query.where(Post.id != exclude_post_id)
    mine = _comparable(text)
    found = []
    for post_id, other_text, channel_name, other_due in session.execute(query):
        theirs = _comparable(other_text)
        if theirs == mine:
            found.append(Duplicate(post_id, channel_name, other_due, identical=True))
        elif difflib.SequenceMatcher(None, mine, theirs).ratio() >= NEAR_IDENTICAL:
            found.append(Duplicate(post_id, channel_name, other_due, identical=False))
    return found


def _comparable(text: str) -> str:
    return " ".join(normalised(text).casefold().split())


def x_post_price(text: str) -> Decimal:
    """What X charges to create this post: a post with a link costs more than a plain one."""
    from twitter_text import extract_urls

    return X_PRICE_WITH_LINK if extract_urls(normalised(text)) else X_PRICE_PLAIN


def org_channel(session: Session, organisation_id: int, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None or channel.organisation_id != organisation_id:
        raise NotFound("no such channel")
    return channel
