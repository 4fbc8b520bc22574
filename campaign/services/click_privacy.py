"""The visitor hash: unique clicks per day without storing who clicked.

A click stores HMAC-SHA256(salt of the UTC day, address + user agent), truncated. The salt is
random, kept in the database so that every web process agrees on it, and deleted two days later
(see campaign.services.links.prune); after that the hash cannot be recomputed from an address,
and pruning clears it from the click as well. No raw address is ever written anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaign.models.engagement import LinkSalt

SALT_BYTES = 32
# 32 hex characters: 128 bits, ample to keep a day's visitors of one link apart.
HASH_CHARS = 32


def utc_day(moment: dt.datetime) -> dt.date:
    """The UTC calendar day of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(dt.UTC).date()


def visitor_hash(salt: bytes, address: str | None, user_agent: str | None) -> str:
    """The truncated keyed hash of one visitor on one day."""
    message = f"{address or ''}\n{user_agent or ''}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:HASH_CHARS]


def salt_for(session: Session, day: dt.date, now: dt.datetime) -> bytes:
    """The day's salt, created on first use: insert-or-ignore, then read (race-safe).

    Runs in the caller's transaction; the caller commits.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(LinkSalt)
        .values(day=day, salt=secrets.token_bytes(SALT_BYTES), created_at=now)
        .on_conflict_do_nothing(index_elements=["day"])
    )
    salt: bytes = session.execute(select(LinkSalt.salt).where(LinkSalt.day == day)).scalar_one()
    return salt


class SaltCache:
    """Salts already read by this process, by day (a day's salt never changes once made)."""

    def __init__(self) -> None:
        self._salts: dict[dt.date, bytes] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, day: dt.date, now: dt.datetime) -> bytes:
        """The day's salt; reads (or makes and commits) it in its own short transaction."""
        found = self._salts.get(day)
        if found is not None:
            return found
        try:
            salt = salt_for(session, day, now)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        with self._lock:
            # Only today's and yesterday's salts are ever needed.
            for old in [d for d in self._salts if d < day - dt.timedelta(days=1)]:
                del self._salts[old]
            self._salts[day] = salt
        return salt
