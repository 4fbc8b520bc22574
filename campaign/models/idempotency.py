"""Idempotency keys: the first answer to a keyed API POST, replayed when the request repeats."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base, intpk, utcnow


class IdempotencyKey(Base):
    """One client key per token; in progress until `completed_at`, then it holds the answer."""

    __tablename__ = "idempotency_keys"
    # The unique pair is what makes two concurrent first requests race safely: one insert wins.
    __table_args__ = (UniqueConstraint("api_token_id", "key"),)

    id: Mapped[intpk]
    api_token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[dt.datetime | None]
