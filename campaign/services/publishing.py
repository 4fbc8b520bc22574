"""The publishing engine's database steps: claim, attempt, fenced completion, reaping, missing.

The database is the queue. A worker claims due deliveries under a lease in one short
transaction, writes an attempt record in a second, calls the network outside any transaction,
and records the outcome in a third, fenced by the lease token: if the lease was lost meanwhile,
the completion changes nothing. (A channel whose posts are rows in this database, the outbox,
has no network call: completion.publish_in_database does it all in the claim transaction.)
Every function here never commits; `now` is the database clock, read by the caller in the
same transaction.

Each step works on a whole batch with a few prebuilt Core statements (no ORM objects are
loaded or flushed, nothing is compiled per batch), so a batch costs a handful of statements,
not a few per delivery.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    Table,
    TypeDecorator,
    Update,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler

from campaign.channels.base import OutgoingPost, PublishedPost, ReplyTarget
from campaign.config import PublishingSection
from campaign.db import UTCDateTime, database_now
from campaign.models import Channel, Delivery, DeliveryAttempt, Post
from campaign.services.dbclock import database_clock, database_clock_plus, loaded_time

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


def table(model: type[Any]) -> Table:
    """The Core table behind a mapped class."""
    found: Table = model.__table__
    return found


class JsonList(TypeDecorator[list[Any]]):
    """A list bound as one JSON text parameter (for SQLite's json_each)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value)


def ids_in(column: Any, dialect: str, name: str = "ids") -> Any:
    """`column` is one of a list of ids given as the one parameter `name`.

    One parameter, not one per id: psycopg parses a statement with more than 50 parameters
    afresh on every execution, and SQLAlchemy processes each parameter, both of which cost more
    than running the statement. PostgreSQL takes an array (`= ANY(:ids)`); SQLite, JSON text
    (`IN (SELECT value FROM json_each(:ids))`).
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(Integer)))
    listed = func.json_each(bindparam(name, type_=JsonList())).table_valued("value")
    return column.in_(select(listed.c.value))


_DELIVERIES = table(Delivery)
_POSTS = table(Post)
_CHANNELS = table(Channel)
_ATTEMPTS = table(DeliveryAttempt)


def _claim_statement(one_channel: bool, clock_inside: bool) -> Update:
    """The claim of up to :limit due deliveries, built once: UPDATE ... RETURNING the claims.

    Parameters: limit, token, owner, for one capped channel b_channel_id, and the time: now,
    grace_start (now - grace) and lease_until given by the caller, or (clock_inside) the
    database clock read by the statement itself, with grace_seconds and lease_seconds, which
    saves the round trip that reads it first.

    Earliest due first. No tie-break on id: the (status, due_at) index yields rows in due
    order, so the claim reads only the rows it takes; with `id` added, PostgreSQL sorts every
    due row first (10 ms, not 0.2 ms, per claim with 10,000 due in the same minute; an index on
    (status, due_at, id) would allow both). A batch is still worked through in (due_at, id)
    order (_in_order).
    """
    d, c, p = _DELIVERIES.c, _CHANNELS.c, _POSTS.c
    now: Any = bindparam("now", type_=UTCDateTime())
    grace_start: Any = bindparam("grace_start", type_=UTCDateTime())
    lease_until: Any = bindparam("lease_until", type_=UTCDateTime())
    if clock_inside:
        now = database_clock()
        grace_start = database_clock_plus(-bindparam("grace_seconds", type_=Float()))
        lease_until = database_clock_plus(bindparam("lease_seconds", type_=Float()))
    due = (
        select(d.id)
        .join(_CHANNELS, c.id == d.channel_id)
        .join(_POSTS, p.id == d.post_id)
        .where(
            d.status == "scheduled",
            d.due_at <= now,
            # Later than the grace window: mark_missed deals with it; never publish it late.
            d.due_at >= grace_start,
            or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
            c.status == "active",
            c.kind != "manual",
            p.status == "approved",
        )
    )
    if one_channel:
        due = due.where(c.id == bindparam("b_channel_id"))
    else:
        due = due.where(c.max_posts_per_hour.is_(None), c.max_posts_per_day.is_(None))
    ids = locked_ids(due.order_by(d.due_at).limit(bindparam("limit")))
    return (
        update(_DELIVERIES)
        .where(d.id.in_(ids), d.status == "scheduled")
        .values(
            status="publishing",
            lease_token=bindparam("token"),
            lease_owner=bindparam("owner"),
            lease_expires_at=lease_until,
            attempts=d.attempts + 1,
            updated_at=now,
        )
        .returning(*_claim_columns())
    )


def _claim_columns() -> tuple[Any, ...]:
    """What a Claim is built from (_claims_from_rows): the delivery's columns and, as scalar
    subqueries, its post's and channel's. UPDATE ... RETURNING may name only the updated table
    on SQLite, but subqueries are allowed, so a claim takes one statement (reading the post and
    channel in two more instead was no faster on SQLite, and costs PostgreSQL two round trips).
    """
    d, p, c = _DELIVERIES.c, _POSTS.c, _CHANNELS.c

    def post(column: Any) -> Any:
        return select(column).where(p.id == d.post_id).scalar_subquery()

    def channel(column: Any) -> Any:
        return select(column).where(c.id == d.channel_id).scalar_subquery()

    return (
        d.id,
        d.attempts,
        d.idempotency_key,
        d.due_at,
        d.external_id,
        d.first_attempt_at,
        # A thread part's own text, else the post's (COALESCE stops at the first non-null, so
        # a single post's claim costs what it did).
        func.coalesce(d.text, post(p.text)),
        post(p.link_url),
        d.channel_id,
        channel(c.organisation_id),
        channel(c.kind),
        channel(c.base_url),
        channel(c.credentials_encrypted),
        d.part,
    )


def locked_ids(query: Select[Any]) -> Select[Any]:
    """The ids a claim may take: locked and skipped past other workers' locks, chosen once.

    SKIP LOCKED lets concurrent PostgreSQL workers take disjoint rows; SQLite ignores the
    clause and serialises writers instead (BEGIN IMMEDIATE). The CTE matters: PostgreSQL may
    re-run a plain `IN (subquery LIMIT n)` and update more than n rows; a locking CTE is
    evaluated exactly once.
    """
    chosen = query.with_for_update(of=_DELIVERIES, skip_locked=True).cte("chosen")
    return select(chosen.c.id)


_CLAIM_STATEMENTS = {
    (one_channel, clock_inside): _claim_statement(one_channel, clock_inside)
    for one_channel in (False, True)
    for clock_inside in (False, True)
}


def _claim(
    session: Session,
    now: dt.datetime | None,
    worker_id: str,
    rules: EngineRules,
    limit: int,
    channel_id: int | None,
) -> list[Claim]:
    token = uuid.uuid4().hex
    params: dict[str, Any] = {"limit": limit, "token": token, "owner": worker_id[:120]}
    if now is None:
        params["grace_seconds"] = rules.grace.total_seconds()
        params["lease_seconds"] = rules.lease.total_seconds()
    else:
        params.update(now=now, grace_start=now - rules.grace, lease_until=now + rules.lease)
    if channel_id is not None:
        params["b_channel_id"] = channel_id
    key = (channel_id is not None, now is None)
    dialect = session.get_bind().dialect
    if now is None and dialect.name == "sqlite":
        # Driver SQL (compiled once): SQLAlchemy's processing of the 50 returned rows cost
        # about half as much again as SQLite's claim itself, inside the write lock.
        compiled = _compiled_claim(key, dialect)
        values = compiled.construct_params(params)
        session.flush()  # as session.execute would: the claim must see pending changes
        loaded = loaded_time(dialect)
        rows: Sequence[Any] = [
            (*row[:3], loaded(row[3]), row[4], loaded(row[5]), *row[6:])
            for row in session.connection()
            .exec_driver_sql(
                compiled.string, tuple(values[name] for name in compiled.positiontup or ())
            )
            .all()
        ]
    else:
        rows = session.execute(_CLAIM_STATEMENTS[key], params).all()
    return _claims_from_rows(rows, dict.fromkeys((row[0] for row in rows), token))


@functools.lru_cache(maxsize=8)
def _compiled_claim(key: tuple[bool, bool], dialect: Dialect) -> SQLCompiler:
    compiled = _CLAIM_STATEMENTS[key].compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or not compiled.positiontup:
        raise TypeError(f"the claim does not compile to positional SQL for {dialect.name}")
    return compiled


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
    session: Session,
    now: dt.datetime | None,
    worker_id: str,
    rules: EngineRules,
    limit: int | None = None,
) -> list[Claim]:
    """Claim up to `limit` due deliveries under a fresh lease, honouring each channel's caps.

    `now` is the database clock read in this transaction, or None for the statements to read
    it themselves (one round trip fewer). The claims come earliest due first; those to one
    capped channel share a lease token of their own, the others one token.
    """
    limit = limit or rules.batch_size
    claimed = _claim(session, now, worker_id, rules, limit, None)
    if len(claimed) >= limit:
        # A full batch already: capped channels wait for the next pass, as they would below.
        return with_replies(session, _in_order(claimed))
    if now is None:
        now = database_now(session)
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
        claimed += _claim(session, now, worker_id, rules, quota, channel_id)
    return with_replies(session, _in_order(claimed))


def _in_order(claims: list[Claim]) -> list[Claim]:
    """A batch is worked through earliest due first, then by id."""
    return sorted(claims, key=lambda c: (c.post.due_at, c.delivery_id))


@functools.cache
def _load_claims_statement(dialect: str) -> Select[Any]:
    return select(*_claim_columns()).where(ids_in(_DELIVERIES.c.id, dialect))


def _load_claims(session: Session, claimed: list[tuple[str, int]]) -> list[Claim]:
    """The claimed deliveries with their post and channel, in (due_at, id) order."""
    if not claimed:
        return []
    tokens = dict((i, t) for t, i in claimed)
    statement = _load_claims_statement(session.get_bind().dialect.name)
    rows = session.execute(statement, {"ids": list(tokens)}).all()
    return with_replies(session, _in_order(_claims_from_rows(rows, tokens)))


def _claims_from_rows(rows: Sequence[Any], tokens: dict[int, str]) -> list[Claim]:
    """Claims from rows of _claim_columns(), one ChannelSnapshot per channel."""
    channels: dict[int, ChannelSnapshot] = {}
    claims = []
    for (
        delivery_id,
        attempts,
        key,
        due_at,
        external_id,
        first_attempt_at,
        text,
        link_url,
        channel_id,
        organisation_id,
        kind,
        base_url,
        credentials,
        part,
    ) in rows:
        channel = channels.get(channel_id)
        if channel is None:
            channel = channels[channel_id] = ChannelSnapshot(
                id=channel_id,
                organisation_id=organisation_id,
                kind=kind,
                base_url=base_url,
                credentials_encrypted=credentials,
            )
        claims.append(
            Claim(
                delivery_id=delivery_id,
                lease_token=tokens[delivery_id],
                attempt=attempts,
                channel=channel,
                post=OutgoingPost(
                    delivery_id=delivery_id,
                    idempotency_key=key,
                    text=text,
                    link_url=link_url,
                    due_at=due_at,
                    external_id=external_id,
                    first_attempt_at=first_attempt_at,
                    part=part,
                ),
            )
        )
    return claims


def with_replies(session: Session, claims: list[Claim]) -> list[Claim]:
    """Claims of thread parts (part > 0) with what they reply to: the part before them and the
    thread's head, as published. A part carries its own text and no post link (the head has
    it). Single posts pass through untouched, with no query.
    """
    parts = [c for c in claims if c.post.part > 0]
    if not parts:
        return claims
    me, other = aliased(Delivery), aliased(Delivery)
    rows = session.execute(
        select(me.id, other.part, other.external_id, other.reply_ref, other.external_url)
        .join(other, _same_thread(other, me))
        .where(
            me.id.in_([c.delivery_id for c in parts]),
            other.part < me.part,
            other.status == "published",
        )
        .order_by(me.id, other.part)
    ).all()
    # Per part: the head and the nearest earlier published part (a part cancelled on its own,
    # its vacancy closed, is passed over: the next part answers the one before it).
    published: dict[int, list[tuple[int, str | None, str | None, str | None]]] = {}
    for delivery_id, part, external_id, reply_ref, external_url in rows:
        published.setdefault(delivery_id, []).append((part, external_id, reply_ref, external_url))
    done = []
    for claim in claims:
        if claim.post.part > 0:
            chain = published.get(claim.delivery_id, [])
            reply_to = None
            if chain and chain[0][0] == 0 and chain[0][1] and chain[-1][1]:
                root, parent = chain[0], chain[-1]
                reply_to = ReplyTarget(
                    parent_id=str(parent[1]),
                    root_id=str(root[1]),
                    parent_ref=parent[2],
                    root_ref=root[2],
                    parent_url=parent[3],
                )
            # Without a published head the adapter refuses the part (it is never sent as a
            # post of its own); the engine only schedules a part once its head is published.
            post = replace(claim.post, link_url=None, reply_to=reply_to)
            claim = replace(claim, post=post)
        done.append(claim)
    return done


# RETURNING makes this one multi-row INSERT (insertmanyvalues) rather than a statement per row.
_INSERT_ATTEMPTS = insert(_ATTEMPTS).returning(_ATTEMPTS.c.id)


@functools.cache
def _first_attempt_at(dialect: str) -> Update:
    return (
        update(_DELIVERIES)
        .where(ids_in(_DELIVERIES.c.id, dialect), _DELIVERIES.c.first_attempt_at.is_(None))
        .values(first_attempt_at=bindparam("now", type_=UTCDateTime()))
    )


def start_attempts(
    session: Session, claims: list[Claim], now: dt.datetime, worker_id: str, kind: str = "publish"
) -> None:
    """Write an attempt record per claim, with the stable key, before any network call."""
    if not claims:
        return
    session.execute(
        _INSERT_ATTEMPTS,
        [
            {
                "delivery_id": claim.delivery_id,
                "kind": kind,
                "number": claim.attempt,
                "lease_token": claim.lease_token,
                "worker_id": worker_id[:120],
                "idempotency_key": claim.post.idempotency_key,
                "started_at": now,
                "outcome": "pending",
            }
            for claim in claims
        ],
    ).all()
    if kind == "publish":
        session.execute(
            _first_attempt_at(session.get_bind().dialect.name),
            {"ids": [c.delivery_id for c in claims], "now": now},
        )


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
) -> set[int]:
    """Renew the leases of claims still waiting their turn in a long batch.

    Returns the delivery ids still held: a claim missing from it lost its lease (the reaper
    took it back), and its call must not be made.
    """
    renewed: set[int] = set()
    for token in {c.lease_token for c in claims}:
        ids = [c.delivery_id for c in claims if c.lease_token == token]
        renewed.update(
            session.scalars(
                update(_DELIVERIES)
                .where(
                    _DELIVERIES.c.id.in_(ids),
                    _DELIVERIES.c.lease_token == token,
                    _DELIVERIES.c.status == "publishing",
                )
                .values(lease_expires_at=now + rules.lease)
                .returning(_DELIVERIES.c.id)
            ).all()
        )
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


# --- threads --------------------------------------------------------------------------------

_STOPPED_WHY = {
    "failed": "failed",
    "missed": "was missed",
    "cancelled": "was cancelled",
    "needs_review": "could not be confirmed",
}


# The end of the reason a later part was stopped with (see `advance_threads`); `revive_thread`
# finds the parts to send after all by it.
THREAD_STOPPED = "so this later part of the thread was not sent"

_ANY_WAITING = select(_DELIVERIES.c.id).where(_DELIVERIES.c.status == "waiting").limit(1)


def _same_thread(one: Any, other: Any) -> Any:
    return and_(one.post_id == other.post_id, one.channel_id == other.channel_id)


def advance_threads(session: Session, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """Move waiting thread parts on, in the thread rule careers advisers expect:

    - A part is scheduled once every part before it is settled (published, or cancelled on its
      own, e.g. its vacancy closed) and the head is published. It is due no earlier than now,
      so its grace window starts when the part before it went out, never before.
    - A part is cancelled, with the reason, once the head was cancelled or an earlier part
      failed, was missed or needs a person: a reply never goes out without the posts before it.

    Returns the counts. Cheap when there is no thread: both steps start from
    `status = 'waiting'` on the (status, due_at) index.
    """
    if session.execute(_ANY_WAITING).first() is None:
        return {"scheduled": 0, "cancelled": 0}  # no thread waits: one index probe
    me, head, earlier = aliased(Delivery), aliased(Delivery), aliased(Delivery)
    unsettled = (
        select(earlier.id)
        .where(
            _same_thread(earlier, me),
            earlier.part < me.part,
            earlier.status.not_in(("published", "cancelled")),
        )
        .exists()
    )
    ready = session.execute(
        select(me.id, me.due_at)
        .join(head, and_(_same_thread(head, me), head.part == 0))
        .where(me.status == "waiting", head.status == "published", ~unsettled)
        .order_by(me.id)
        .limit(limit)
        .with_for_update(of=me, skip_locked=True)
    ).all()
    for delivery_id, due_at in ready:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "waiting")
            .values(status="scheduled", due_at=max(due_at, now), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    stopping = or_(
        and_(earlier.part == 0, earlier.status == "cancelled"),
        earlier.status.in_(("failed", "missed", "needs_review")),
    )
    stopped = session.execute(
        select(me.id, earlier.part, earlier.status)
        .join(earlier, and_(_same_thread(earlier, me), earlier.part < me.part))
        .where(me.status == "waiting", stopping)
        .order_by(me.id, earlier.part)
        .limit(limit)
        .with_for_update(of=me, skip_locked=True)
    ).all()
    seen: set[int] = set()
    for delivery_id, part, status in stopped:
        if delivery_id in seen:
            continue
        seen.add(delivery_id)
        which = "the thread's first post" if part == 0 else f"reply {part} of the thread"
        message = (
            f"Not published: {which} {_STOPPED_WHY.get(status, status)}, {THREAD_STOPPED}"
            " (a reply never goes out without the posts before it)."
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "waiting")
            .values(status="cancelled", last_error=message, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return {"scheduled": len(ready), "cancelled": len(seen)}


def revive_thread(session: Session, delivery_id: int, now: dt.datetime) -> int:
    """A person sends a thread's part again: the later parts that were stopped because a part
    before them did not go out wait again, to follow it (`advance_threads` schedules them in
    order, or stops them again if an earlier part still has not gone out). Parts cancelled on
    their own (by a person, or because their vacancy closed) stay cancelled. Returns how many
    wait again."""
    row = session.execute(
        select(Delivery.post_id, Delivery.channel_id, Delivery.part).where(
            Delivery.id == delivery_id
        )
    ).one()
    done = session.execute(
        update(Delivery)
        .where(
            Delivery.post_id == row.post_id,
            Delivery.channel_id == row.channel_id,
            Delivery.part > row.part,
            Delivery.status == "cancelled",
            Delivery.last_error.contains(THREAD_STOPPED, autoescape=True),
        )
        .values(status="waiting", last_error=None, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
