"""What scheduling plans around: channels' weekly queue slots, the academic year's key dates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, str200, utcnow
from campaign.models.channel import Channel

KEY_DATE_KINDS = ("term", "exams", "results", "careers_fair", "deadline", "other")
KEY_DATE_EFFECTS = ("none", "boost", "blackout")


class QueueSlot(Base):
    """A weekly wall time (in the organisation's timezone) at which a channel takes a post."""

    __tablename__ = "queue_slots"
    __table_args__ = (
        UniqueConstraint("channel_id", "weekday", "at"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
    )

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    weekday: Mapped[int]  # 0 = Monday
    at: Mapped[dt.time]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    channel: Mapped[Channel] = relationship()


class KeyDate(Base):
    """A date or span of the academic year: shown on the calendar, a boost or a blackout."""

    __tablename__ = "key_dates"
    __table_args__ = (
        CheckConstraint(
            "kind in ('term', 'exams', 'results', 'careers_fair', 'deadline', 'other')",
            name="kind_known",
        ),
        CheckConstraint("effect in ('none', 'boost', 'blackout')", name="effect_known"),
        CheckConstraint("ends_on >= starts_on", name="ends_after_start"),
        # An imported event keeps its iCal UID, so importing the same file again updates it.
        UniqueConstraint("organisation_id", "uid"),
        Index("ix_key_dates_org_starts_on", "organisation_id", "starts_on"),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    title: Mapped[str200]
    kind: Mapped[str] = mapped_column(String(20), default="other")
    effect: Mapped[str] = mapped_column(String(10), default="none")
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date]  # inclusive
    notes: Mapped[str] = mapped_column(Text, default="")
    uid: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def covers(self, day: dt.date) -> bool:
        return self.starts_on <= day <= self.ends_on
