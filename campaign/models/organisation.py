"""The organisation (tenant) and its framing-tag vocabulary."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from campaign.db import Base, intpk, str80, str200, utcnow

AUDIENCES = ("students", "graduates", "employers", "parents")

DEFAULT_FRAMING_TAGS = (
    ("bare_link", "Bare link"),
    ("context", "Context"),
    ("question", "Question"),
    ("statistic", "Statistic"),
    ("story", "Story"),
    ("call_to_action", "Call to action"),
    ("deadline_urgency", "Deadline urgency"),
    ("salary_led", "Salary-led"),
)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[intpk]
    slug: Mapped[str80] = mapped_column(unique=True)
    name: Mapped[str200]
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    calendar_secret: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The duplicate guard looks this many hours either side of a post on the same channel.
    duplicate_window_hours: Mapped[int] = mapped_column(default=72)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    framing_tags: Mapped[list[FramingTag]] = relationship(
        back_populates="organisation", order_by="FramingTag.position"
    )

    @validates("timezone")
    def _check_timezone(self, _key: str, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class FramingTag(Base):
    """One framing dimension in an organisation's vocabulary (bare link, context, question...)."""

    __tablename__ = "framing_tags"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),)

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str80]
    position: Mapped[int] = mapped_column(default=0)
    archived: Mapped[bool] = mapped_column(default=False)

    organisation: Mapped[Organisation] = relationship(back_populates="framing_tags")
