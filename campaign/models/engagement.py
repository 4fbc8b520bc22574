"""First-party tracked links: one short code per (delivery, target URL), its clicks and bot hits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base, intpk, utcnow

# How each UTM parameter is filled (see campaign.services.links.utm_parameters).
UTM_SOURCE_MODES = ("network", "channel", "custom", "off")
UTM_MEDIUM_MODES = ("custom", "off")
UTM_CAMPAIGN_MODES = ("campaign", "custom", "off")
UTM_CONTENT_MODES = ("variant", "custom", "off")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class TrackedLink(Base):
    """A short code standing for one target URL in one delivery's published text."""

    __tablename__ = "tracked_links"
    # The target is matched through its SHA-256, so a 2,000-character URL fits a btree index.
    __table_args__ = (UniqueConstraint("delivery_id", "target_sha256"),)

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    target_url: Mapped[str] = mapped_column(String(2000))
    target_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LinkClick(Base):
    """One person's click: no IP, only a visitor hash whose salt is deleted after two days.

    `is_first_today` marks the first click of a visitor on a link on a UTC day; a partial unique
    index makes that exact under concurrency, so unique clicks are a plain count.
    """

    __tablename__ = "link_clicks"
    __table_args__ = (
        Index("ix_link_clicks_link_id_clicked_at", "link_id", "clicked_at"),
        Index(
            "uq_link_clicks_first_today",
            "link_id",
            "day",
            "visitor_hash",
            unique=True,
            sqlite_where=text("is_first_today"),
            postgresql_where=text("is_first_today"),
        ),
    )

    id: Mapped[intpk]
    link_id: Mapped[int] = mapped_column(ForeignKey("tracked_links.id", ondelete="CASCADE"))
    clicked_at: Mapped[dt.datetime]
    # The UTC day of `clicked_at`: what unique counting and pruning work on.
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    # Truncated HMAC-SHA256(daily salt, ip + user agent); cleared when pruned past its day.
    visitor_hash: Mapped[str | None] = mapped_column(String(32))
    is_first_today: Mapped[bool] = mapped_column(default=False)


class LinkBotHit(Base):
    """A link-preview fetcher, crawler or HEAD request: kept for inspection, never a click."""

    __tablename__ = "link_bot_hits"
    __table_args__ = (Index("ix_link_bot_hits_link_id_at", "link_id", "at"),)

    id: Mapped[intpk]
    link_id: Mapped[int] = mapped_column(ForeignKey("tracked_links.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(index=True)
    bot: Mapped[str] = mapped_column(String(40))
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class LinkSalt(Base):
    """The random salt of one UTC day, shared by every process; deleted after two days."""

    __tablename__ = "link_salts"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LinkSettings(Base):
    """An organisation's UTM choices; no row means the defaults (all four parameters on)."""

    __tablename__ = "link_settings"
    __table_args__ = (
        CheckConstraint(_in("source_mode", UTM_SOURCE_MODES), name="source_mode_known"),
        CheckConstraint(_in("medium_mode", UTM_MEDIUM_MODES), name="medium_mode_known"),
        CheckConstraint(_in("campaign_mode", UTM_CAMPAIGN_MODES), name="campaign_mode_known"),
        CheckConstraint(_in("content_mode", UTM_CONTENT_MODES), name="content_mode_known"),
    )

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    # False: no UTM parameters at all.
    utm_enabled: Mapped[bool] = mapped_column(default=True)
    # False: a utm_* already on the target URL wins; True: ours replace it.
    override_existing: Mapped[bool] = mapped_column(default=False)
    source_mode: Mapped[str] = mapped_column(String(16), default="network")
    source_value: Mapped[str] = mapped_column(String(100), default="")
    medium_mode: Mapped[str] = mapped_column(String(16), default="custom")
    medium_value: Mapped[str] = mapped_column(String(100), default="social")
    campaign_mode: Mapped[str] = mapped_column(String(16), default="campaign")
    campaign_value: Mapped[str] = mapped_column(String(100), default="")
    content_mode: Mapped[str] = mapped_column(String(16), default="variant")
    content_value: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
