"""The outbox: the app's own timeline, the embedded channel that needs no external account."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base, intpk


class OutboxEntry(Base):
    """One post published to an outbox channel; the idempotency key makes a repeat a no-op."""

    __tablename__ = "outbox_entries"
    __table_args__ = (
        Index("ix_outbox_entries_channel_id_published_at", "channel_id", "published_at"),
    )

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    link_url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[dt.datetime]
