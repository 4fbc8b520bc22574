"""Recording what a publish call or a lookup came to, fenced by the claim's lease.

Outcome classes (../shared/DESIGN.md): success publishes; a permanent refusal fails (a revoked
token also marks the channel "reconnect needed"); a retryable refusal goes back to the queue
with backoff; anything that may have reached the platform becomes `unknown` and is looked up
before any retry; what cannot be looked up goes to a person (`needs_review`).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from campaign.channels.base import PublishedPost
from campaign.models import Channel, Delivery, DeliveryAttempt
from campaign.services.publishing import (
    Claim,
    EngineRules,
    Outcome,
    _load_claims,
    close_attempt,
    fenced_update,
    locked_ids,
)

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
    return str(values["status"]) if changed else "lease_lost"


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
    return str(values["status"]) if changed else "lease_lost"


def _requeue(now: dt.datetime, message: str) -> dict[str, object]:
    return {"status": "scheduled", "next_attempt_at": now, "last_error": message}


def _review(message: str) -> dict[str, object]:
    return {"status": "needs_review", "last_error": message, "next_attempt_at": None}
