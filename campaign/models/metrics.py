"""Engagement figures read at fixed post ages, and what the collector knows about each post.

A snapshot is keyed by (delivery, window, source): the window is an age label from
`[metrics] ages` ("1h", "24h", "7d"), or "latest"; the source says where the figures came from.
Every figure is a nullable count: None means "not reported", never zero. A snapshot keeps when
its figures were read and the post's real age then, so a late reading (the worker was down) is
visible: reports compare `age_seconds` with `window_seconds`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base, intpk

METRIC_FIELDS = (
    "impressions",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "link_clicks",
    "profile_clicks",
)
METRIC_SOURCES = ("platform", "manual", "csv")
LATEST_WINDOW = "latest"


class _Figures:
    """The eight counts every snapshot (and outbox entry) may carry; None means not reported."""

    impressions: Mapped[int | None]
    likes: Mapped[int | None]
    reposts: Mapped[int | None]
    replies: Mapped[int | None]
    quotes: Mapped[int | None]
    bookmarks: Mapped[int | None]
    # Platform-reported clicks on the post's link (X's url_link_clicks); tracked-link clicks
    # are counted separately by the redirector.
    link_clicks: Mapped[int | None]
    profile_clicks: Mapped[int | None]


class MetricSnapshot(_Figures, Base):
    """A delivery's figures at one age window, from one source; written only by upsert."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (
        UniqueConstraint("delivery_id", "window", "source"),
        CheckConstraint("source in ('platform', 'manual', 'csv')", name="source_known"),
        CheckConstraint("age_seconds >= 0", name="age_not_negative"),
        # "The latest snapshot at or before age X per delivery" is an index range scan.
        Index("ix_metric_snapshots_delivery_id_age_seconds", "delivery_id", "age_seconds"),
    )

    id: Mapped[intpk]
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    window: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    # The window's nominal age in seconds (3600 for "1h"); None for "latest".
    window_seconds: Mapped[int | None]
    # When the figures were read, and how old the post was then (a late read shows here).
    collected_at: Mapped[dt.datetime]
    age_seconds: Mapped[int]


class MetricCollectionState(Base):
    """What the collector knows about one published delivery: when to read it next, and why not.

    No row: never read yet. `next_collect_at` None: finished (past the last age) or not found.
    While a pass holds the delivery, `next_collect_at` is the end of its claim.
    """

    __tablename__ = "metric_collection_states"
    __table_args__ = (Index("ix_metric_collection_states_next_collect_at", "next_collect_at"),)

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    next_collect_at: Mapped[dt.datetime | None]
    last_collected_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The platform said it has no such post although publishing reported success (R6): polling
    # stops, earlier snapshots stay, and the post page shows the flag.
    not_found_at: Mapped[dt.datetime | None]
    # Failed reads in a row (reset by a successful one).
    attempts: Mapped[int] = mapped_column(default=0)


class MetricChannelState(Base):
    """A channel the collector must leave alone until a time (rate limited, failing)."""

    __tablename__ = "metric_channel_states"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    next_collect_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime]


class OutboxEntryMetrics(_Figures, Base):
    """Figures for an outbox timeline entry (the demo fills them), read back like a platform's.

    `hidden_at` set: the entry counts as removed from the timeline, so it is "not found".
    """

    __tablename__ = "outbox_entry_metrics"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_entries.id", ondelete="CASCADE"), primary_key=True
    )
    hidden_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]
