"""A place posts go: an outbox, a manual channel or a network account."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, str200, utcnow
from campaign.models.organisation import Organisation

CHANNEL_KINDS = ("outbox", "manual", "x", "mastodon", "bluesky")
CHANNEL_STATUSES = ("active", "paused", "needs_reauth", "disabled")


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        CheckConstraint(
            "kind in ('outbox', 'manual', 'x', 'mastodon', 'bluesky')", name="kind_known"
        ),
        CheckConstraint(
            "status in ('active', 'paused', 'needs_reauth', 'disabled')", name="status_known"
        ),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str200]
    audience: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Instance URL for Mastodon, PDS for Bluesky; empty means the configured default.
    base_url: Mapped[str | None] = mapped_column(String(500))
    # Fernet ciphertext of the OAuth tokens or app password (see campaign.crypto).
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    # Publishing caps honoured by dispatch; None means no cap.
    max_posts_per_hour: Mapped[int | None]
    max_posts_per_day: Mapped[int | None]
    # Why the channel needs attention (a revoked token, undecryptable credentials), in plain words.
    status_detail: Mapped[str | None] = mapped_column(Text)
    # The Mastodon instance's own limits, read from the instance (None until read).
    max_characters: Mapped[int | None]
    characters_per_url: Mapped[int | None]
    limits_checked_at: Mapped[dt.datetime | None]
    # The platform account's name, shown on pages (never a credential).
    account_label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()
