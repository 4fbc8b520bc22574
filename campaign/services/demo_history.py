"""Weeks of published history for the demo organisation, so its pages have something to show.

Each framing of each demo message went out to the students' outbox once a week for the last
few weeks, in alternating order across days (as an experiment would place them). Each post has
its outbox entry with the tracked link in its text, invented clicks on that link spread over the
days after it went out, and the outbox's figures read at each age (1 h, 24 h, 7 d and "latest")
as the metrics collector would have read them. Everything is made from one seeded random
generator, so every load gives the same history, and it is only ever loaded into the demo.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.channels.base import PlatformMetrics
from campaign.models import Channel, Delivery, OutboxEntry, Post, Variant
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.services import links
from campaign.services.metric_adapters import set_outbox_metrics
from campaign.services.metric_windows import windows_from
from campaign.services.metrics import SnapshotValues, store_snapshots

WEEKS = 6
SEED = 20261203
# Invented click-through rates per framing position in a message: the second framing does
# better, the third about as well as the first, so the reports have something honest to say.
_RATE_BY_POSITION = (0.012, 0.019, 0.013)
# Days after the start of each week on which the framings go out (Tuesday and Thursday style).
_DAY_OFFSETS = (1, 3, 5)


@dataclass(frozen=True)
class HistoryPost:
    post_id: int
    delivery_id: int
    variant_id: int
    published_at: dt.datetime


def add_history(
    session: Session,
    channel: Channel,
    framings: Sequence[Sequence[Variant]],
    now: dt.datetime,
    link_base_url: str,
    ages: Sequence[str] = ("1h", "24h", "7d"),
) -> list[HistoryPost]:
    """Publish the framings into the channel's past, with clicks and figures; flushes only."""
    rng = random.Random(SEED)  # noqa: S311 (invented demo figures, not secrets)
    made: list[HistoryPost] = []
    start = (now - dt.timedelta(weeks=WEEKS)).replace(hour=0, minute=0, second=0, microsecond=0)
    for week in range(WEEKS):
        for message, variants in enumerate(framings):
            order = list(range(len(variants)))
            # Alternate which framing goes first from week to week, so the day never decides.
            shift = (week + message) % len(order)
            order = order[shift:] + order[:shift]
            for slot, position in enumerate(order):
                day = start + dt.timedelta(weeks=week, days=_DAY_OFFSETS[slot % len(_DAY_OFFSETS)])
                at = day + dt.timedelta(hours=10 + message, minutes=rng.randrange(0, 50))
                if at >= now - dt.timedelta(hours=1):
                    continue
                made.append(_publish(session, channel, variants[position], at))
    session.flush()
    texts = links.ensure_links(session, [h.delivery_id for h in made], link_base_url, now)
    entries = _entries(session, channel, made, texts)
    windows = windows_from(ages)
    snapshots: list[SnapshotValues] = []
    for history, entry in zip(made, entries, strict=True):
        rate = _RATE_BY_POSITION[_position(framings, history.variant_id) % len(_RATE_BY_POSITION)]
        impressions = max(80, int(rng.gauss(650, 160)))
        clicks = _binomial(rng, impressions, rate)
        codes = texts[history.delivery_id].codes
        if codes:
            _clicks(session, codes, history.published_at, clicks, now, rng)
        final = _figures(impressions, rng)
        set_outbox_metrics(session, entry.id, final, now)
        age_now = (now - history.published_at).total_seconds()
        for window in windows:
            if window.seconds > age_now:
                continue
            read_at = history.published_at + dt.timedelta(seconds=window.seconds + 90)
            snapshots.append(
                SnapshotValues(
                    history.delivery_id,
                    window.label,
                    window.seconds,
                    "platform",
                    read_at,
                    window.seconds + 90,
                    _scaled(final, window.seconds),
                )
            )
        latest_age = int(min(age_now, max(w.seconds for w in windows) + 86400))
        snapshots.append(
            SnapshotValues(
                history.delivery_id,
                "latest",
                None,
                "platform",
                history.published_at + dt.timedelta(seconds=latest_age),
                latest_age,
                _scaled(final, latest_age),
            )
        )
    store_snapshots(session, snapshots)
    session.flush()
    return made


def _publish(session: Session, channel: Channel, variant: Variant, at: dt.datetime) -> HistoryPost:
    post = Post(
        organisation_id=channel.organisation_id,
        variant_id=variant.id,
        text=variant.text,
        link_url=variant.message.link_url,
        status="approved",
        scheduled_for=at,
        created_at=at - dt.timedelta(days=3),
        submitted_at=at - dt.timedelta(days=3),
        reviewed_at=at - dt.timedelta(days=2),
    )
    delivery = Delivery(
        channel=channel,
        due_at=at,
        status="published",
        idempotency_key=uuid.uuid4().hex,
        attempts=1,
        first_attempt_at=at,
        published_at=at,
        updated_at=at,
    )
    post.deliveries.append(delivery)
    session.add(post)
    session.flush()
    return HistoryPost(post.id, delivery.id, variant.id, at)


def _entries(
    session: Session,
    channel: Channel,
    made: Sequence[HistoryPost],
    texts: dict[int, links.PublishedText],
) -> list[OutboxEntry]:
    entries = []
    for history in made:
        delivery = session.get(Delivery, history.delivery_id)
        assert delivery is not None
        published = texts[history.delivery_id]
        entry = OutboxEntry(
            channel_id=channel.id,
            idempotency_key=delivery.idempotency_key,
            text=published.text,
            link_url=published.link_url,
            published_at=history.published_at,
        )
        session.add(entry)
        entries.append(entry)
    session.flush()
    for history, entry in zip(made, entries, strict=True):
        delivery = session.get(Delivery, history.delivery_id)
        assert delivery is not None
        delivery.external_id = f"outbox-{entry.id}"
        delivery.external_url = f"/timeline#entry-{entry.id}"
    return entries


def _position(framings: Sequence[Sequence[Variant]], variant_id: int) -> int:
    for variants in framings:
        for index, variant in enumerate(variants):
            if variant.id == variant_id:
                return index
    return 0


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def _clicks(
    session: Session,
    codes: Mapping[str, str],
    published_at: dt.datetime,
    count: int,
    now: dt.datetime,
    rng: random.Random,
) -> None:
    """Clicks on the post's first tracked link, most within a day of posting; a few repeat
    visitors, whose second click on the same day is not a unique one."""
    link_id = _link_id(session, next(iter(codes.values())))
    seen: set[tuple[dt.date, str]] = set()
    rows = []
    for _ in range(count):
        delay = dt.timedelta(hours=min(rng.expovariate(1 / 9), 24 * 7))
        at = published_at + delay
        if at > now:
            continue
        visitor = f"{rng.randrange(0, max(2, count * 9 // 10)):032x}"
        day = at.astimezone(dt.UTC).date()
        first = (day, visitor) not in seen
        seen.add((day, visitor))
        rows.append(
            LinkClick(
                link_id=link_id, clicked_at=at, day=day, visitor_hash=visitor, is_first_today=first
            )
        )
    session.add_all(rows)


def _link_id(session: Session, code: str) -> int:
    found = session.scalar(select(TrackedLink.id).where(TrackedLink.code == code))
    assert found is not None
    return found


def _figures(impressions: int, rng: random.Random) -> PlatformMetrics:
    return PlatformMetrics(
        impressions=impressions,
        likes=_binomial(rng, impressions, 0.02),
        reposts=_binomial(rng, impressions, 0.004),
        replies=_binomial(rng, impressions, 0.002),
    )


def _scaled(final: PlatformMetrics, age_seconds: float) -> PlatformMetrics:
    """The figures as they stood at an age: most of a post's reach comes in its first day."""
    share = 1 - math.exp(-age_seconds / (9 * 3600))
    return PlatformMetrics(
        impressions=round((final.impressions or 0) * share),
        likes=round((final.likes or 0) * share),
        reposts=round((final.reposts or 0) * share),
        replies=round((final.replies or 0) * share),
    )
