"""Experiments: a message's variants (arms) compared on balanced, randomised slots.

An `Experiment` fixes its hypothesis, primary metric, report age, verdict rule and planned sample
before any data arrives; an `ExperimentArm` is one variant under test (position 0 is the control);
an `ExperimentSlot` is one channel at one time, assigned to an arm by a seeded draw and turned into
a scheduled post when a manager approves the experiment. Reports read the arms, each slot's
post_id per arm, and those posts' deliveries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, utcnow
from campaign.models.campaign import Variant
from campaign.models.channel import Channel

PRIMARY_METRICS = ("clicks_per_impression", "clicks_per_post")
VERDICT_RULES = ("planned", "sequential")
EXPERIMENT_STATUSES = ("planned", "running", "concluded", "abandoned")
DECISIONS = ("adopt_variant", "keep_control", "no_difference", "inconclusive")
MIN_ARMS = 2
MAX_ARMS = 6


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_in("primary_metric", PRIMARY_METRICS), name="primary_metric_known"),
        CheckConstraint(_in("verdict_rule", VERDICT_RULES), name="verdict_rule_known"),
        CheckConstraint(_in("status", EXPERIMENT_STATUSES), name="status_known"),
        CheckConstraint(f"decision is null or {_in('decision', DECISIONS)}", name="decision_known"),
        CheckConstraint("alpha > 0 AND alpha < 1", name="alpha_range"),
        CheckConstraint("report_age_seconds > 0", name="report_age_positive"),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    primary_metric: Mapped[str] = mapped_column(String(40), default="clicks_per_impression")
    # Posts are compared at this post age (the latest metric snapshot at or before it).
    report_age_seconds: Mapped[int] = mapped_column(default=86400)
    alpha: Mapped[float] = mapped_column(default=0.05)
    # The relative lift the plan is powered for (0.5 = +50% over the baseline rate).
    minimum_lift: Mapped[float] = mapped_column(default=0.5)
    # The baseline rate assumed in the power calculation.
    baseline_rate: Mapped[float | None]
    planned_posts_per_arm: Mapped[int]
    planned_impressions_per_arm: Mapped[int | None]
    verdict_rule: Mapped[str] = mapped_column(String(20), default="planned")
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[dt.datetime | None]
    concluded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    concluded_at: Mapped[dt.datetime | None]
    decision: Mapped[str | None] = mapped_column(String(40))
    chosen_arm_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiment_arms.id", ondelete="SET NULL", use_alter=True)
    )
    # What we learnt (concluded) or why it was abandoned.
    learning: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None]

    arms: Mapped[list[ExperimentArm]] = relationship(
        back_populates="experiment",
        order_by="ExperimentArm.position",
        cascade="all, delete-orphan",
        foreign_keys="ExperimentArm.experiment_id",
    )
    slots: Mapped[list[ExperimentSlot]] = relationship(
        back_populates="experiment",
        order_by="(ExperimentSlot.channel_id, ExperimentSlot.scheduled_at)",
        cascade="all, delete-orphan",
    )
    chosen_arm: Mapped[ExperimentArm | None] = relationship(
        foreign_keys=[chosen_arm_id], post_update=True
    )


class ExperimentArm(Base):
    """One variant under test; position 0 is the control."""

    __tablename__ = "experiment_arms"
    __table_args__ = (
        UniqueConstraint("experiment_id", "position"),
        UniqueConstraint("experiment_id", "variant_id"),
        CheckConstraint("position >= 0", name="position_not_negative"),
    )

    id: Mapped[intpk]
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    # Nullable for arms that are not message variants (alert templates, later).
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int]

    experiment: Mapped[Experiment] = relationship(
        back_populates="arms", foreign_keys=[experiment_id]
    )
    variant: Mapped[Variant | None] = relationship()

    @property
    def is_control(self) -> bool:
        return self.position == 0


class ExperimentSlot(Base):
    """One channel at one time, assigned to an arm; the post is made when the plan is approved."""

    __tablename__ = "experiment_slots"
    __table_args__ = (UniqueConstraint("experiment_id", "channel_id", "scheduled_at"),)

    id: Mapped[intpk]
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    scheduled_at: Mapped[dt.datetime]
    # Order of the slot within its channel (time order, from 0).
    position: Mapped[int]
    arm_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiment_arms.id", ondelete="SET NULL"), index=True
    )
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )

    experiment: Mapped[Experiment] = relationship(back_populates="slots")
    channel: Mapped[Channel] = relationship()
    arm: Mapped[ExperimentArm | None] = relationship()
