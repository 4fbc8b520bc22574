"""The publishing engine's database steps: claim, attempt, fenced completion, reaping, missing.

The database is the queue. A worker claims due deliveries under a lease in one short
transaction, writes an attempt record in a second, calls the network outside any transaction,
and records the outcome in a third, fenced by the lease token: if the lease was lost meanwhile,
the completion changes nothing. Every function here flushes and never commits; `now` is the
database clock, read by the caller in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from campaign.channels.base import OutgoingPost, PublishedPost
from campaign.config import PublishingSection
from campaign.models import Channel, Delivery, DeliveryAttempt, Post

log = logging.getLogger(__name__)

# Deliveries on a channel that count against its hourly and daily caps while in these states.
_IN_FLIGHT = ("publishing", "unknown")


@dataclass(frozen=True)
class EngineRules:
    """The engine's timings and limits, from the [publishing] settings."""

    lease: dt.timedelta
    grace: dt.timedelta
    max_attempts: int
    max_lookups: int
    batch_size: int
    backoff_base: float
    backoff_max: float
    lookup_delay: dt.timedelta

    @classmethod
    def from_settings(cls, section: PublishingSection) -> EngineRules:
        return cls(
            lease=dt.timedelta(seconds=section.lease_seconds),
            grace=dt.timedelta(minutes=section.grace_minutes),
            max_attempts=section.max_attempts,
            max_lookups=section.max_lookups,
            batch_size=section.batch_size,
            backoff_base=section.backoff_base_seconds,
            backoff_max=section.backoff_max_seconds,
            lookup_delay=dt.timedelta(seconds=section.lookup_delay_seconds),
        )

    def backoff(self, attempt: int, retry_after: float | None) -> dt.timedelta:
        """Exponential backoff for this attempt; a longer wait asked for by the platform wins."""
        seconds = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return dt.timedelta(seconds=max(seconds, retry_after or 0.0))


@dataclass(frozen=True)
class ChannelSnapshot:
    """What building an adapter needs, read in the claiming transaction."""

    id: int
    organisation_id: int
    kind: str
    base_url: str | None
    credentials_encrypted: bytes | None


@dataclass(frozen=True)
class Claim:
    """One delivery held under a lease by this worker, with everything the call needs."""

    delivery_id: int
    lease_token: str
    attempt: int
    channel: ChannelSnapshot
    post: OutgoingPost


OutcomeKind = Literal["published", "retry", "failed", "reconnect", "duplicate", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What one publish call came to, in the engine's outcome classes."""

    kind: OutcomeKind
    message: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    published: PublishedPost | None = None


def _due_ids(
    now: dt.datetime, rules: EngineRules, limit: int, channel_id: int | None
) -> Select[Any]:
    query = (
        select(Delivery.id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Delivery.status == "scheduled",
            Delivery.due_at <= now,
            # Later than the grace window: mark_missed deals with it; never publish it late.
            Delivery.due_at >= now - rules.grace,
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
            Channel.status == "active",
            Channel.kind != "manual",
            Post.status == "approved",
        )
    )
    if channel_id is None:
        query = query.where(
            Channel.max_posts_per_hour.is_(None), Channel.max_posts_per_day.is_(None)
        )
    else:
        query = query.where(Channel.id == channel_id)
    return locked_ids(query.order_by(Delivery.due_at, Delivery.id).limit(limit))


def locked_ids(query: Select[Any]) -> Select[Any]:
    """The ids a claim may take: locked and skipped past other workers' locks, chosen once.

    SKIP LOCKED lets concurrent PostgreSQL workers take disjoint rows; SQLite ignores the
    clause and serialises writers instead (BEGIN IMMEDIATE). The CTE matters: PostgreSQL may
    re-run a plain `IN (subquery LIMIT n)` and update more than n rows; a locking CTE is
    evaluated exactly once.
    """
    chosen = query.with_for_update(of=Delivery, skip_locked=True).cte("chosen")
    return select(chosen.c.id)


def _claim_ids(
    session: Session,
    ids_query: Select[Any],
    now: dt.datetime,
    worker_id: str,
    rules: EngineRules,
) -> tuple[str, list[int]]:
    token = uuid.uuid4().hex
    statement = (
        update(Delivery)
        .where(Delivery.id.in_(ids_query), Delivery.status == "scheduled")
        .values(
            status="publishing",
            lease_token=token,
            lease_owner=worker_id[:120],
            lease_expires_at=now + rules.lease,
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return token, list(session.scalars(statement))


def _remaining_quota(session: Session, channel: Channel, now: dt.datetime) -> int:
    """How many more posts the channel's caps allow now, counting those in flight."""
    remaining = 10**9
    for cap, window in (
        (channel.max_posts_per_hour, dt.timedelta(hours=1)),
        (channel.max_posts_per_day, dt.timedelta(days=1)),
    ):
        if cap is None:
            continue
        used = session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.channel_id == channel.id,
                or_(
                    Delivery.status.in_(_IN_FLIGHT),
                    and_(Delivery.status == "published", Delivery.first_attempt_at > now - window),
                ),
            )
        )
        remaining = min(remaining, cap - int(used or 0))
    return max(0, remaining)


def claim_due(
    session: Session, now: dt.datetime, worker_id: str, rules: EngineRules, limit: int | None = None
) -> list[Claim]:
    """Claim up to `limit` due deliveries under a fresh lease, honouring each channel's caps."""
    limit = limit or rules.batch_size
    claimed: list[tuple[str, int]] = []
    token, ids = _claim_ids(session, _due_ids(now, rules, limit, None), now, worker_id, rules)
    claimed += [(token, i) for i in ids]
    capped = session.scalars(
        select(Channel.id)
        .join(Delivery, Delivery.channel_id == Channel.id)
        .where(
            or_(Channel.max_posts_per_hour.is_not(None), Channel.max_posts_per_day.is_not(None)),
            Channel.status == "active",
            Delivery.status == "scheduled",
            Delivery.due_at <= now,
        )
        .distinct()
    ).all()
    for channel_id in capped:
        if len(claimed) >= limit:
            break
        # Lock the channel row so that concurrent workers count its quota one at a time.
        channel = session.scalar(select(Channel).where(Channel.id == channel_id).with_for_update())
        if channel is None:
            continue
        quota = min(_remaining_quota(session, channel, now), limit - len(claimed))
        if quota <= 0:
            continue
        token, ids = _claim_ids(
            session, _due_ids(now, rules, quota, channel_id), now, worker_id, rules
        )
        claimed += [(token, i) for i in ids]
    return _load_claims(session, claimed)


def _load_claims(session: Session, claimed: list[tuple[str, int]]) -> list[Claim]:
    if not claimed:
        return []
    tokens = dict((i, t) for t, i in claimed)
    rows = session.execute(
        select(Delivery, Post, Channel)
        .join(Post, Post.id == Delivery.post_id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(Delivery.id.in_(list(tokens)))
        .order_by(Delivery.due_at, Delivery.id)
        .execution_options(populate_existing=True)
    ).all()
    return [
        Claim(
            delivery_id=delivery.id,
            lease_token=tokens[delivery.id],
            attempt=delivery.attempts,
            channel=ChannelSnapshot(
                id=channel.id,
                organisation_id=channel.organisation_id,
                kind=channel.kind,
                base_url=channel.base_url,
                credentials_encrypted=channel.credentials_encrypted,
            ),
            post=OutgoingPost(
                delivery_id=delivery.id,
                idempotency_key=delivery.idempotency_key,
                text=post.text,
                link_url=post.link_url,
                due_at=delivery.due_at,
                external_id=delivery.external_id,
                first_attempt_at=delivery.first_attempt_at,
            ),
        )
        for delivery, post, channel in rows
    ]


def start_attempts(
    session: Session, claims: list[Claim], now: dt.datetime, worker_id: str, kind: str = "publish"
) -> None:
    """Write an attempt record per claim, with the stable key, before any network call."""
    for claim in claims:
        session.add(
            DeliveryAttempt(
                delivery_id=claim.delivery_id,
                kind=kind,
                number=claim.attempt,
                lease_token=claim.lease_token,
                worker_id=worker_id[:120],
                idempotency_key=claim.post.idempotency_key,
                started_at=now,
            )
        )
    if kind == "publish" and claims:
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_([c.delivery_id for c in claims]),
                Delivery.first_attempt_at.is_(None),
            )
            .values(first_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()


def close_attempt(
    session: Session,
    claim: Claim,
    outcome: str,
    now: dt.datetime,
    error: str | None = None,
    http_status: int | None = None,
) -> None:
    """Record how the attempt made under this claim ended."""
    session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.delivery_id == claim.delivery_id,
            DeliveryAttempt.lease_token == claim.lease_token,
            DeliveryAttempt.outcome == "pending",
        )
        .values(outcome=outcome, finished_at=now, error=error, http_status=http_status)
        .execution_options(synchronize_session=False)
    )


def fenced_update(
    session: Session, claim: Claim, now: dt.datetime, expected_status: str, **values: object
) -> bool:
    """Change the delivery only while this claim still holds its lease; False if it was lost."""
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == claim.delivery_id,
            Delivery.lease_token == claim.lease_token,
            Delivery.status == expected_status,
        )
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    changed = bool(result.rowcount)  # type: ignore[attr-defined]
    if not changed:
        log.warning(
            "delivery %s: lease %s was lost before completion; leaving it to the reconciler",
            claim.delivery_id,
            claim.lease_token[:8],
        )
    return changed


def extend_leases(
    session: Session, claims: list[Claim], now: dt.datetime, rules: EngineRules
) -> int:
    """Renew the leases of claims still waiting their turn in a long batch; returns how many."""
    renewed = 0
    for token in {c.lease_token for c in claims}:
        ids = [c.delivery_id for c in claims if c.lease_token == token]
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.lease_token == token,
                Delivery.status == "publishing",
            )
            .values(lease_expires_at=now + rules.lease)
            .execution_options(synchronize_session=False)
        )
        renewed += int(result.rowcount)  # type: ignore[attr-defined]
    return renewed


def reap_expired_leases(session: Session, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """Expired leases: back to scheduled if no call began, else unknown (checked before retry)."""
    rows = session.execute(
        select(Delivery.id, Delivery.lease_token)
        .where(Delivery.status == "publishing", Delivery.lease_expires_at < now)
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    counts = {"scheduled": 0, "unknown": 0}
    for delivery_id, token in rows:
        began = session.scalar(
            select(func.count(DeliveryAttempt.id)).where(
                DeliveryAttempt.delivery_id == delivery_id,
                DeliveryAttempt.lease_token == token,
                DeliveryAttempt.kind == "publish",
            )
        )
        target = "unknown" if began else "scheduled"
        values: dict[str, object] = {
            "status": target,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if target == "unknown":
            values["last_error"] = (
                "The worker stopped while publishing; checking with the platform before any retry."
            )
            values["next_attempt_at"] = now
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.lease_token == token)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(DeliveryAttempt)
            .where(
                DeliveryAttempt.delivery_id == delivery_id,
                DeliveryAttempt.lease_token == token,
                DeliveryAttempt.outcome == "pending",
            )
            .values(outcome="lease_expired", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        counts[target] += 1
    session.flush()
    return counts


def mark_missed(session: Session, now: dt.datetime, rules: EngineRules, limit: int = 500) -> int:
    """Deliveries no worker reached within the grace window become missed, with the reason."""
    rows = session.execute(
        select(Delivery.id, Delivery.due_at, Channel.status, Post.status, Delivery.last_error)
        .join(Channel, Channel.id == Delivery.channel_id)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Delivery.status == "scheduled",
            Delivery.due_at < now - rules.grace,
            Channel.kind != "manual",
        )
        .order_by(Delivery.due_at)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()
    minutes = int(rules.grace.total_seconds() // 60)
    for delivery_id, due_at, channel_status, post_status, last_error in rows:
        if post_status != "approved":
            reason = "it was not approved by the time it was due"
        elif channel_status != "active":
            reason = f"its channel was {channel_status.replace('_', ' ')} when it was due"
        elif last_error:
            reason = f"it could not be published in time (last error: {last_error})"
        else:
            reason = "no worker reached it in time"
        message = (
            f"Missed: due at {due_at:%Y-%m-%d %H:%M} UTC, not published within the {minutes}-minute"
            f" grace window because {reason}. It was not sent late; reschedule it if still wanted."
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "scheduled")
            .values(status="missed", last_error=message, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return len(rows)
