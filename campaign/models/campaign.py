"""Campaign, then message (one link, one intent), then variants (framings of the message)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, str200, utcnow
from campaign.models.organisation import FramingTag, Organisation

variant_framing_tags = Table(
    "variant_framing_tags",
    Base.metadata,
    Column("variant_id", ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True),
    Column("framing_tag_id", ForeignKey("framing_tags.id", ondelete="CASCADE"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str200]
    description: Mapped[str] = mapped_column(Text, default="")
    # What the campaign is for, in the team's words ("200 finalists book a CV review by May").
    goal: Mapped[str] = mapped_column(Text, default="")
    # One of AUDIENCES, or None when the campaign speaks to everyone.
    audience: Mapped[str | None] = mapped_column(String(40))
    starts_on: Mapped[dt.date | None]
    ends_on: Mapped[dt.date | None]
    archived: Mapped[bool] = mapped_column(default=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    messages: Mapped[list[Message]] = relationship(
        back_populates="campaign", order_by="Message.id", cascade="all, delete-orphan"
    )


class Message(Base):
    """One link or resource with one intent; its variants are the framings under test."""

    __tablename__ = "messages"

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str200]
    link_url: Mapped[str | None] = mapped_column(String(2000))
    resource_name: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str] = mapped_column(String(500), default="")
    context: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="messages")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="message", order_by="Variant.id", cascade="all, delete-orphan"
    )


class Variant(Base):
    """One framing of a message, written for one audience."""

    __tablename__ = "variants"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="variants")
    framing_tags: Mapped[list[FramingTag]] = relationship(secondary=variant_framing_tags)
