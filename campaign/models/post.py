"""A post (a variant scheduled for a time) and its deliveries, one per channel and thread part.

A post is usually one delivery per channel (part 0). A thread (a vacancy digest in thread mode)
adds parts 1, 2, ... on the same channel: each is published as a reply to the part before it,
with its own text, idempotency key and attempts. A part after the head waits (`waiting`) until
the part before it is published; only then is it scheduled, due no earlier than that moment.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, utcnow
from campaign.models.campaign import Variant
from campaign.models.channel import Channel

POST_STATUSES = ("draft", "pending_approval", "approved", "rejected", "cancelled")
DELIVERY_STATUSES = (
    "waiting",
    "scheduled",
    "publishing",
    "published",
    "unknown",
    "failed",
    "missed",
    "needs_review",
    "cancelled",
)
# Delivery states from which nothing moves on without a person.
TERMINAL_DELIVERY_STATUSES = frozenset({"published", "failed", "missed", "cancelled"})


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (CheckConstraint(_in("status", POST_STATUSES), name="status_known"),)

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    link_url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    scheduled_for: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None]
    # Plain words about the time, e.g. that it was moved out of a spring-forward gap.
    schedule_note: Mapped[str | None] = mapped_column(Text)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_at: Mapped[dt.datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[dt.datetime | None]
    review_comment: Mapped[str | None] = mapped_column(Text)
    # Why it may go out inside a blackout key date (None: it is not inside one).
    blackout_override: Mapped[str | None] = mapped_column(Text)

    variant: Mapped[Variant | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", order_by="Delivery.id", cascade="all, delete-orphan"
    )

    @property
    def heads(self) -> list[Delivery]:
        """One delivery per channel: the post itself (part 0), without its thread's replies."""
        return [d for d in self.deliveries if d.part == 0]

    def parts_of(self, channel_id: int) -> list[Delivery]:
        """The thread on one channel, head first."""
        return sorted(
            (d for d in self.deliveries if d.channel_id == channel_id), key=lambda d: d.part
        )


class Delivery(Base):
    """One post (or one part of a thread) on one channel; the unit the worker claims,
    publishes and reconciles."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "channel_id", "part"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_deliveries_status_due_at", "status", "due_at"),
    )

    id: Mapped[intpk]
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    due_at: Mapped[dt.datetime]
    # Stable across retries, so a network that supports it can drop a duplicate.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Which worker holds the lease (for the delivery page and for logs).
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    # When the first publish attempt began: lookups after an unknown outcome search from here.
    first_attempt_at: Mapped[dt.datetime | None]
    # Lookups made while the outcome was unknown; capped before a person is asked.
    lookups: Mapped[int] = mapped_column(default=0)
    # Who marked a manual delivery as posted (manual channels only).
    posted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # 0: the post itself (the head of a thread); n > 0: the n-th reply of its thread.
    part: Mapped[int] = mapped_column(default=0, server_default="0")
    # A thread part's own text (None: the post's text, as for part 0).
    text: Mapped[str | None] = mapped_column(Text)
    # What the platform needs besides external_id for a reply to this post (Bluesky's cid).
    reply_ref: Mapped[str | None] = mapped_column(String(200))

    post: Mapped[Post] = relationship(back_populates="deliveries")
    channel: Mapped[Channel] = relationship()
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="delivery", order_by="DeliveryAttempt.id", cascade="all, delete-orphan"
    )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_DELIVERY_STATUSES

    @property
    def shown_text(self) -> str:
        """The text this delivery publishes (before its links are tracked)."""
        return self.text if self.text is not None else self.post.text


ATTEMPT_KINDS = ("publish", "lookup")
ATTEMPT_OUTCOMES = (
    "pending",
    "published",
    "retry",
    "failed",
    "unknown",
    "duplicate",
    "found",
    "not_found",
    "lookup_unavailable",
    "lease_lost",
    "lease_expired",
    "released",
)


class DeliveryAttempt(Base):
    """One call to a platform for a delivery, written before the call and closed after it."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        CheckConstraint(_in("kind", ATTEMPT_KINDS), name="kind_known"),
        CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name="outcome_known"),
        Index("ix_delivery_attempts_delivery_id_lease_token", "delivery_id", "lease_token"),
    )

    id: Mapped[intpk]
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="publish")
    number: Mapped[int]
    lease_token: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str] = mapped_column(String(120))
    # The delivery's stable key, as sent to the platform.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(20), default="pending")
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")
