"""What to try next: Thompson sampling over a message's framings, from its stored posts.

Each variant of the message is a framing. Its counts are the tracked-link clicks and latest
impressions of the published posts made from it; a variant with no such posts borrows the
counts of the organisation's posts whose variants carry exactly the same framing tags. The
engine's `thompson_allocation` does the rest (with its floor). A suggestion, never a verdict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaign.analysis import Allocation, FramingCounts, thompson_allocation
from campaign.analysis.bandit import DEFAULT_FLOOR
from campaign.models import Campaign, Delivery, Message, Post, Variant
from campaign.models.metrics import METRIC_SOURCES
from campaign.services import NotFound
from campaign.services.links import click_counts
from campaign.services.metric_reads import snapshots_at_age

MAX_FRAMINGS = 8  # what the engine takes
LATEST_AGE_SECONDS = 10 * 366 * 86400  # "the latest reading", whatever the post's age


@dataclass(frozen=True)
class FramingBasis:
    """One framing's counts and where they came from."""

    variant: Variant
    clicks: int
    impressions: int
    posts: int
    borrowed: bool  # counts from other posts with the same framing tags


@dataclass(frozen=True)
class Suggestion:
    message: Message
    framings: list[FramingBasis]
    allocation: Allocation
    suggested: Variant
    why: str


def suggest_next(
    session: Session, organisation_id: int, message_id: int, now: dt.datetime
) -> Suggestion | None:
    """The suggested next framing of a message, or None when it has no variants."""
    message = session.scalar(
        select(Message)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.id == message_id, Campaign.organisation_id == organisation_id)
        .options(selectinload(Message.variants).selectinload(Variant.framing_tags))
    )
    if message is None:
        raise NotFound("no such message")
    variants = message.variants[:MAX_FRAMINGS]
    if not variants:
        return None
    own = _counts(session, organisation_id, {v.id: v.id for v in variants})
    framings = []
    for variant in variants:
        clicks, impressions, count = own.get(variant.id, (0, 0, 0))
        borrowed = False
        if impressions == 0:
            alike = _same_tags(session, organisation_id, variant)
            if alike:
                clicks, impressions, count = _counts(
                    session, organisation_id, dict.fromkeys(alike, variant.id)
                ).get(variant.id, (0, 0, 0))
                borrowed = impressions > 0
        framings.append(FramingBasis(variant, clicks, impressions, count, borrowed))
    names = [f"{f.variant.label} (#{f.variant.id})" for f in framings]
    allocation = thompson_allocation(
        [FramingCounts(n, f.clicks, f.impressions) for n, f in zip(names, framings, strict=True)],
        rng=message.id * 100_003 + now.date().toordinal(),  # the same suggestion all day
        floor=min(DEFAULT_FLOOR, 1 / len(framings)),
    )
    suggested = framings[names.index(allocation.next_framing)].variant
    return Suggestion(message, framings, allocation, suggested, _why(framings, allocation))


def _why(framings: list[FramingBasis], allocation: Allocation) -> str:
    total = sum(f.impressions for f in framings)
    if total == 0:
        basis = "None of these framings has published posts with impressions yet, so all are "
        basis += "equally likely: this is a fair draw to start learning."
    else:
        borrowed = [f.variant.label for f in framings if f.borrowed]
        basis = f"Based on {sum(f.clicks for f in framings):,} clicks from {total:,} impressions"
        basis += (
            f" (for {', '.join(borrowed)}, from other posts with the same framing tags)."
            if borrowed
            else " of this message's published posts."
        )
    return f"{basis} {allocation.explanation} This is a suggestion, not a verdict."


def _same_tags(session: Session, organisation_id: int, variant: Variant) -> list[int]:
    keys = sorted(t.key for t in variant.framing_tags)
    if not keys:
        return []
    candidates = session.scalars(
        select(Variant)
        .join(Message, Message.id == Variant.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Campaign.organisation_id == organisation_id, Variant.id != variant.id)
        .options(selectinload(Variant.framing_tags))
    )
    return [v.id for v in candidates if sorted(t.key for t in v.framing_tags) == keys]


def _counts(
    session: Session, organisation_id: int, group_of: dict[int, int]
) -> dict[int, tuple[int, int, int]]:
    """Clicks, impressions and posts per group, from published deliveries with impressions."""
    rows = session.execute(
        select(Delivery.id, Post.variant_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Post.organisation_id == organisation_id,
            Post.variant_id.in_(list(group_of)),
            Delivery.status == "published",
        )
    ).all()
    variant_of = {d: v for d, v in rows if v is not None}
    impressions: dict[int, int] = {}
    for source in reversed(METRIC_SOURCES):  # platform figures win
        for delivery_id, row in snapshots_at_age(
            session, list(variant_of), LATEST_AGE_SECONDS, source
        ).items():
            if row.figures.impressions is not None:
                impressions[delivery_id] = row.figures.impressions
    clicks = click_counts(session, impressions)
    totals: dict[int, tuple[int, int, int]] = {}
    for delivery_id, shown in impressions.items():
        group = group_of[variant_of[delivery_id]]
        c, n, p = totals.get(group, (0, 0, 0))
        totals[group] = (c + min(clicks[delivery_id].clicks, shown), n + shown, p + 1)
    return totals
