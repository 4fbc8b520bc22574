"""Idempotency keys: claim a key, keep the first answer, replay it, and forget it after a day."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaign.models import IdempotencyKey
from campaign.services import ServiceError

KEEP_FOR = dt.timedelta(hours=24)
# A request still "in progress" after this long died with its process (no request runs this
# long): a retry with the same key takes the claim over instead of waiting for the daily prune.
ABANDONED_AFTER = dt.timedelta(minutes=10)


class KeyReused(ServiceError):
    """The key already belongs to a different request."""


class KeyInProgress(ServiceError):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class Claimed:
    """This request owns the key now; `row_id` is where its answer goes."""

    row_id: int


@dataclass(frozen=True)
class Replay:
    """The stored answer of the first request with this key."""

    status_code: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    """SHA-256 (hex) of the method, path and raw body: what makes two requests 'the same'."""
    digest = hashlib.sha256()
    # Length-prefixed parts, so that no method/path/body split can collide with another.
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _find(session: Session, token_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.api_token_id == token_id, IdempotencyKey.key == key
        )
    )


def _answer_from(row: IdempotencyKey, fingerprint: str) -> Replay:
    if row.request_hash != fingerprint:
        raise KeyReused("this Idempotency-Key was used with a different request")
    if row.completed_at is None or row.status_code is None:
        raise KeyInProgress("a request with this Idempotency-Key is still in progress")
    return Replay(row.status_code, row.response_body or "")


def claim(
    session: Session,
    token_id: int,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    now: dt.datetime,
) -> Claimed | Replay:
    """Own the key (inserted and committed) or get the first answer; raises KeyReused/InProgress.

    This one commits, unlike other services: the claim must be visible to concurrent requests
    before the view runs, or the unique constraint could not tell them apart.
    """
    found = _find(session, token_id, key)
    if found is not None:
        taken = _take_over_abandoned(session, found, fingerprint, now)
        return taken if taken is not None else _answer_from(found, fingerprint)
    row = IdempotencyKey(
        api_token_id=token_id,
        key=key,
        method=method.upper(),
        path=path,
        request_hash=fingerprint,
        created_at=now,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent request with the same key inserted first.
        session.rollback()
        winner = _find(session, token_id, key)
        if winner is None:  # it failed and released the key in between
            raise KeyInProgress(
                "a request with this Idempotency-Key is still in progress"
            ) from None
        return _answer_from(winner, fingerprint)
    return Claimed(row.id)


def _take_over_abandoned(
    session: Session, found: IdempotencyKey, fingerprint: str, now: dt.datetime
) -> Claimed | None:
    """Own a claim whose request died in progress long ago (committed), or None."""
    if found.completed_at is not None or found.request_hash != fingerprint:
        return None
    if found.created_at > now - ABANDONED_AFTER:
        return None
    # Conditional, so that of two retries racing for it only one takes it over.
    result = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == found.id,
            IdempotencyKey.completed_at.is_(None),
            IdempotencyKey.created_at == found.created_at,
        )
        .values(created_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return Claimed(found.id) if result.rowcount == 1 else None  # type: ignore[attr-defined]


def complete(session: Session, row_id: int, status_code: int, body: str, now: dt.datetime) -> None:
    """Store the answer on the claimed row; the caller commits."""
    row = session.get(IdempotencyKey, row_id)
    if row is None:  # pruned or released meanwhile: nothing to keep
        return
    row.status_code = status_code
    row.response_body = body
    row.completed_at = now
    session.flush()


def release(session: Session, row_id: int) -> None:
    """Forget the claim so that the client may retry with the same key; the caller commits."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))


def prune_keys(session: Session, now: dt.datetime, keep_for: dt.timedelta = KEEP_FOR) -> int:
    """Delete keys created more than `keep_for` (24 hours) before `now`; returns how many went."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - keep_for)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
