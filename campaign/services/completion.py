"""Recording what a publish call or a lookup came to, fenced by the claim's lease.

Outcome classes (../shared/DESIGN.md): success publishes; a permanent refusal fails (a revoked
token also marks the channel "reconnect needed"); a retryable refusal goes back to the queue
with backoff; anything that may have reached the platform becomes `unknown` and is looked up
before any retry; what cannot be looked up goes to a person (`needs_review`).

A channel whose posts are rows in the app's own database (the outbox) is published and completed
inside the claim transaction (publish_in_database): the attempt records, the entries and the
completions commit together with the claim or not at all, so its outcome is never unknown.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid

from sqlalchemy import (
    Insert,
    String,
    bindparam,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from campaign.channels.base import PublishedPost, TransactionalPublisher
from campaign.models import Channel, Delivery, DeliveryAttempt
from campaign.services.dbclock import database_clock, stored_time
from campaign.services.publishing import (
    Claim,
    EngineRules,
    Outcome,
    _load_claims,
    advance_threads,
    close_attempt,
    fenced_update,
    ids_in,
    locked_ids,
    table,
)

log = logging.getLogger(__name__)

_ATTEMPT_OUTCOME = {
    "published": "published",
    "retry": "retry",
    "failed": "failed",
    "reconnect": "failed",
    "duplicate": "duplicate",
    "unknown": "unknown",
}


def _published_values(found: PublishedPost, now: dt.datetime) -> dict[str, object]:
    return {
        "status": "published",
        "external_id": found.external_id[:200],
        "external_url": (found.url or "")[:2000] or None,
        "published_at": found.published_at or now,
        "reply_ref": (found.reply_ref or "")[:200] or None,
        "last_error": None,
        "lease_token": None,
        "lease_expires_at": None,
        "next_attempt_at": None,
    }


def mark_channel_reconnect(session: Session, channel_id: int, reason: str) -> None:
    """Stop dispatching to a channel whose credentials no longer work, and say why."""
    session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(status="needs_reauth", status_detail=reason[:2000])
        .execution_options(synchronize_session=False)
    )


def complete_publish(
    session: Session, claim: Claim, outcome: Outcome, now: dt.datetime, rules: EngineRules
) -> str:
    """Apply a publish outcome under the claim's lease; returns the new state or 'lease_lost'."""
    message = (outcome.message or "")[:4000] or None
    values: dict[str, object]
    if outcome.kind == "published" and outcome.published is not None:
        values = _published_values(outcome.published, now)
    elif outcome.kind == "retry":
        if claim.attempt >= rules.max_attempts:
            values = {
                "status": "failed",
                "last_error": f"Gave up after {claim.attempt} attempts. Last error: {message}",
            }
        else:
            wait = rules.backoff(claim.attempt, outcome.retry_after)
            values = {
                "status": "scheduled",
                "next_attempt_at": now + wait,
                "last_error": f"{message} Retrying after {now + wait:%H:%M:%S} UTC.",
            }
    elif outcome.kind in ("failed", "reconnect"):
        values = {"status": "failed", "last_error": message}
    else:
        # Unknown and duplicate: the platform may hold the post. Look before any retry.
        values = {
            "status": "unknown",
            "next_attempt_at": now + rules.lookup_delay,
            "lookups": 0,
            "last_error": message,
        }
    if values["status"] != "published":
        values.update(lease_token=None, lease_expires_at=None)
    changed = fenced_update(session, claim, now, "publishing", **values)
    close_attempt(
        session,
        claim,
        _ATTEMPT_OUTCOME[outcome.kind] if changed else "lease_lost",
        now,
        error=message,
        http_status=outcome.http_status,
    )
    if outcome.kind == "reconnect":
        mark_channel_reconnect(session, claim.channel.id, message or "reconnect needed")
    session.flush()
    if changed and values["status"] != "scheduled":
        advance_threads(session, now)  # the next part of a thread goes on, or stops
    return str(values["status"]) if changed else "lease_lost"


_DELIVERIES = table(Delivery)
_ATTEMPTS = table(DeliveryAttempt)


@functools.cache
def _attempt_held(dialect: str) -> Insert:
    """The fence, the row locks and the attempt records, in one statement.

    For each delivery still held under the lease, an attempt row ("published": it commits only
    with its entry), at the database clock; the rows are locked until commit on PostgreSQL, so
    the reaper, which skips locked rows, cannot take them meanwhile (SQLite's write lock
    serialises writers anyway). Returns the held delivery ids.
    """
    d = _DELIVERIES.c
    return (
        insert(_ATTEMPTS)
        .from_select(
            [
                "delivery_id",
                "kind",
                "number",
                "lease_token",
                "worker_id",
                "idempotency_key",
                "started_at",
                "finished_at",
                "outcome",
            ],
            select(
                d.id,
                literal("publish"),
                d.attempts,
                d.lease_token,
                bindparam("worker_id", type_=String()),
                d.idempotency_key,
                database_clock(),
                database_clock(),
                literal("published"),
            )
            .where(
                ids_in(d.id, dialect),
                d.lease_token == bindparam("token"),
                d.status == "publishing",
            )
            .with_for_update(),
        )
        .returning(_ATTEMPTS.c.delivery_id)
    )


_COMPLETE_SET = (
    " UPDATE deliveries SET status = 'published', external_id = done.external_id,"
    " external_url = done.external_url, published_at = done.published_at,"
    " first_attempt_at = coalesce(deliveries.first_attempt_at, {clock}),"
    " last_error = NULL, lease_token = NULL, lease_expires_at = NULL,"
    " next_attempt_at = NULL, updated_at = {clock}"
    " FROM done WHERE deliveries.id = done.id AND deliveries.lease_token = {lease}"
    " AND deliveries.status = 'publishing'"
)

# PostgreSQL: the rows as four arrays, a handful of parameters whatever the batch size (psycopg
# parses a statement with more than 50 parameters afresh on every execution).
_COMPLETE_PUBLISHED_PG = text(
    "WITH done AS (SELECT * FROM unnest(CAST(:ids AS integer[]),"  # noqa: S608 (no values)
    " CAST(:external_ids AS varchar[]), CAST(:external_urls AS varchar[]),"
    " CAST(:published_ats AS timestamptz[])) AS t (id, external_id, external_url, published_at))"
    + _COMPLETE_SET.format(clock="statement_timestamp()", lease=":token")
)


@functools.lru_cache(maxsize=64)
def _complete_published_sqlite(rows: int) -> str:
    """The same for SQLite, as driver SQL: the rows as a VALUES list of `?` parameters (id,
    external_id, external_url, published_at per row), then the token; one string per row count.

    Run with exec_driver_sql: for this statement SQLAlchemy's per-execution work (a parameter
    dictionary, each parameter's processing) cost ten times SQLite's own (0.31 ms against 0.03
    ms for 50 rows), all of it inside SQLite's single write lock. (One JSON parameter read with
    json_each cost SQLite more.) UPDATE ... FROM needs SQLite 3.33+.
    """
    clock = str(database_clock().compile(dialect=sqlite.dialect()))
    placeholders = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        "WITH done (id, external_id, external_url, published_at) AS"
        f" (VALUES {placeholders})" + _COMPLETE_SET.format(clock=clock, lease="?")
    )


def _complete_published(
    session: Session, token: str, rows: list[tuple[int, str, str | None, dt.datetime]]
) -> None:
    """Mark (id, external_id, external_url, published_at) rows published, in one UPDATE.

    Fenced like fenced_update: lease token and status publishing.
    """
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        ids, external_ids, external_urls, published_ats = (list(c) for c in zip(*rows, strict=True))
        session.execute(
            _COMPLETE_PUBLISHED_PG,
            {
                "token": token,
                "ids": ids,
                "external_ids": external_ids,
                "external_urls": external_urls,
                "published_ats": published_ats,
            },
        )
        return
    stored_form = stored_time(dialect)
    parameters: list[object] = []
    for delivery_id, external_id, external_url, published_at in rows:
        parameters += (delivery_id, external_id, external_url, stored_form(published_at))
    parameters.append(token)
    session.flush()  # as session.execute would, before the driver-level statement
    session.connection().exec_driver_sql(_complete_published_sqlite(len(rows)), tuple(parameters))


def publish_in_database(
    session: Session, claims: list[Claim], publisher: TransactionalPublisher, worker_id: str
) -> list[str]:
    """Publish and complete claims for a channel that lives in this database, atomically.

    The claims share one lease token. In the caller's transaction, three statements for the
    whole batch, each reading the database clock itself: record an attempt for (and lock) each
    delivery still held under the lease, store their posts through the adapter, mark them
    published. A claim whose lease was lost is neither published nor changed. Nothing is
    visible until the caller commits, and then all of it is: there is no call outside a
    transaction and no unknown outcome. Returns each claim's new state, in order ("published"
    or "lease_lost").
    """
    if not claims:
        return []
    token = claims[0].lease_token
    if any(c.lease_token != token for c in claims):
        raise ValueError("publish_in_database takes claims made under one lease token")
    dialect = session.get_bind().dialect.name
    held = set(
        session.scalars(
            _attempt_held(dialect),
            {"ids": [c.delivery_id for c in claims], "token": token, "worker_id": worker_id[:120]},
        ).all()
    )
    live = [c for c in claims if c.delivery_id in held]
    if live:
        found = publisher.publish_within(session, [c.post for c in live])
        if len(found) != len(live):
            raise RuntimeError(f"the adapter stored {len(found)} of {len(live)} posts")
        rows = []
        for claim, post in zip(live, found, strict=True):
            if post.published_at is None or post.published_at.utcoffset() is None:
                raise RuntimeError("an in-database publisher must say when (aware) it stored each")
            # The same values as _published_values.
            url = (post.url or "")[:2000] or None
            rows.append((claim.delivery_id, post.external_id[:200], url, post.published_at))
        _complete_published(session, token, rows)
        # Later parts of a thread wait for these: schedule them now (cheap when none wait).
        # (Their clock: when these were stored, the database clock of this transaction.)
        advance_threads(session, max(row[3] for row in rows))
    for claim in claims:
        if claim.delivery_id not in held:
            log.warning(
                "delivery %s: lease %s was lost before completion; leaving it to the reconciler",
                claim.delivery_id,
                claim.lease_token[:8],
            )
    return ["published" if c.delivery_id in held else "lease_lost" for c in claims]


def release_claim(session: Session, claim: Claim, now: dt.datetime) -> bool:
    """Give back a claimed delivery whose call never started (a worker shutting down)."""
    changed = fenced_update(
        session,
        claim,
        now,
        "publishing",
        status="scheduled",
        lease_token=None,
        lease_expires_at=None,
        attempts=Delivery.attempts - 1,
    )
    close_attempt(session, claim, "released", now)
    session.flush()
    return changed


def claim_unknown(
    session: Session, now: dt.datetime, worker_id: str, rules: EngineRules, limit: int | None = None
) -> list[Claim]:
    """Lease unknown deliveries that are due a lookup; the status stays unknown meanwhile."""
    token = uuid.uuid4().hex
    ids = locked_ids(
        select(Delivery.id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(
            Delivery.status == "unknown",
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit or rules.batch_size)
    )
    claimed = session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == "unknown")
        .values(
            lease_token=token,
            lease_owner=worker_id[:120],
            lease_expires_at=now + rules.lease,
            lookups=Delivery.lookups + 1,
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    # A lookup whose worker died left its attempt open; it ended when its lease did.
    session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.delivery_id.in_(list(claimed)),
            DeliveryAttempt.kind == "lookup",
            DeliveryAttempt.outcome == "pending",
        )
        .values(outcome="lease_expired", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    claims = _load_claims(session, [(token, i) for i in claimed])
    lookups = dict(
        session.execute(
            select(Delivery.id, Delivery.lookups).where(Delivery.id.in_(list(claimed)))
        ).all()
    )
    # For lookups, `attempt` carries the lookup count, which caps them.
    return [
        Claim(c.delivery_id, c.lease_token, int(lookups[c.delivery_id]), c.channel, c.post)
        for c in claims
    ]


def complete_lookup(
    session: Session,
    claim: Claim,
    found: PublishedPost | None,
    now: dt.datetime,
    rules: EngineRules,
    *,
    unavailable: str | None = None,
    lookup_possible: bool = True,
    reconnect: str | None = None,
    retry_safe: bool = False,
) -> str:
    """Apply a lookup's answer to an unknown delivery; returns the new state or 'lease_lost'."""
    attempts = int(
        session.scalar(select(Delivery.attempts).where(Delivery.id == claim.delivery_id)) or 0
    )
    values: dict[str, object]
    if found is not None:
        values, outcome = _published_values(found, now), "found"
    elif reconnect is not None:
        values, outcome = _review(f"Could not check the platform: {reconnect}"), "failed"
        mark_channel_reconnect(session, claim.channel.id, reconnect)
    elif unavailable is not None:
        outcome = "lookup_unavailable"
        if retry_safe and attempts < rules.max_attempts:
            # The platform drops a repeat of our key, so resending is as safe as a lookup.
            values = _requeue(
                now,
                f"Could not check the platform ({unavailable}); publishing again with the same"
                " idempotency key, which the platform deduplicates.",
            )
        elif lookup_possible and claim.attempt < rules.max_lookups:
            values = {
                "status": "unknown",
                "next_attempt_at": now + rules.backoff(claim.attempt, None),
                "last_error": f"Could not check the platform yet: {unavailable}",
            }
        else:
            values = _review(
                f"We could not confirm whether this post was published ({unavailable}). "
                "Check the account, then mark it as posted or publish it again."
            )
    elif attempts >= rules.max_attempts:
        values, outcome = (
            {
                "status": "failed",
                "last_error": f"Not found on the platform after {attempts} attempts; gave up.",
            },
            "not_found",
        )
    else:
        values, outcome = (
            _requeue(
                now, "The platform does not have this post; publishing again with the same key."
            ),
            "not_found",
        )
    if values["status"] != "published":
        values.update(lease_token=None, lease_expires_at=None)
    changed = fenced_update(session, claim, now, "unknown", **values)
    close_attempt(session, claim, outcome if changed else "lease_lost", now, error=unavailable)
    session.flush()
    if changed and values["status"] in ("published", "failed", "needs_review"):
        advance_threads(session, now)
    return str(values["status"]) if changed else "lease_lost"


def _requeue(now: dt.datetime, message: str) -> dict[str, object]:
    return {"status": "scheduled", "next_attempt_at": now, "last_error": message}


def _review(message: str) -> dict[str, object]:
    return {"status": "needs_review", "last_error": message, "next_attempt_at": None}
