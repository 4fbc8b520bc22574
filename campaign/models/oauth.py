"""Connecting accounts by OAuth: the app we registered per Mastodon instance, pending approvals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base, intpk, str200, utcnow

OAUTH_KINDS = ("x", "mastodon")


class MastodonApp(Base):
    """Our app as registered on one Mastodon instance, shared by every connection to it."""

    __tablename__ = "mastodon_apps"

    id: Mapped[intpk]
    # Scheme, host and port only, lowercased: one app per instance.
    instance_url: Mapped[str] = mapped_column(String(500), unique=True)
    client_id: Mapped[str] = mapped_column(String(500))
    # Fernet ciphertext (see campaign.crypto); the secret is never stored in plain text.
    client_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # The callback the app was registered with; a changed [app] base_url needs a new app.
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OAuthAuthorization(Base):
    """An approval an admin started on X or Mastodon, kept until its callback (single use)."""

    __tablename__ = "oauth_authorizations"
    __table_args__ = (CheckConstraint("kind in ('x', 'mastodon')", name="kind_known"),)

    id: Mapped[intpk]
    # The random OAuth `state`: the only handle the callback carries.
    state: Mapped[str] = mapped_column(String(128), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # The Mastodon instance; None for X, which uses the configured API base URL.
    base_url: Mapped[str | None] = mapped_column(String(500))
    channel_name: Mapped[str200]
    audience: Mapped[str] = mapped_column(String(40))
    # Set when reconnecting an existing channel rather than adding one.
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    # X's PKCE code verifier, encrypted: whoever holds it and a code can get tokens.
    verifier_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]
