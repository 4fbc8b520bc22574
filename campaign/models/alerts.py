"""Vacancy alert rules, their template variants, and the alerts made from them.

An `AlertRule` says which vacancies become alert posts on which channels (filters as JSON text,
read through `campaign.services.alerts.RuleFilters`); each `AlertTemplate` is one framing of the
alert. A `VacancyAlert` records that a vacancy was alerted (or refused) for a rule: the unique
(vacancy_id, rule_id) pair is what keeps a vacancy to one alert per rule even when two workers
plan at once.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, utcnow

ALERT_MODES = ("single", "digest", "thread")
ALERT_STATUSES = ("planned", "refused")
DEFAULT_REVIEW_FLAGS = ("unpaid", "salary_ambiguous", "commission")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class AlertRule(Base):
    """Which vacancies become alerts, where they go, and how (single posts, digests, or
    threads: a head post with one reply per vacancy)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(_in("mode", ALERT_MODES), name="mode_known"),
        CheckConstraint("digest_max >= 1 AND digest_max <= 25", name="digest_max_range"),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    # JSON object: keywords, employers, locations, salary_floor, unknown_salary_passes,
    # closing_within_days, source_ids, exclude_flags (see services.alerts.RuleFilters).
    filters: Mapped[str] = mapped_column(Text, default="{}")
    channel_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of channel ids
    # Alerts of this rule wait for a manager even on channels that do not require approval.
    requires_approval: Mapped[bool] = mapped_column(default=False)
    # Vacancies with any of these flags become posts pending approval (comma-separated).
    review_flags: Mapped[str] = mapped_column(String(200), default=",".join(DEFAULT_REVIEW_FLAGS))
    mode: Mapped[str] = mapped_column(String(10), default="single")
    digest_max: Mapped[int] = mapped_column(default=5)
    # Local wall times in the organisation's zone; no alert is scheduled in [start, end).
    quiet_start: Mapped[dt.time | None]
    quiet_end: Mapped[dt.time | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime | None]

    templates: Mapped[list[AlertTemplate]] = relationship(
        back_populates="rule", order_by="AlertTemplate.id", cascade="all, delete-orphan"
    )

    @property
    def channel_id_list(self) -> list[int]:
        try:
            value = json.loads(self.channel_ids or "[]")
        except ValueError:
            return []
        if not isinstance(value, list):
            return []
        return [int(v) for v in value if isinstance(v, int) and not isinstance(v, bool)]

    @property
    def review_flag_list(self) -> list[str]:
        return [flag for flag in (self.review_flags or "").split(",") if flag]

    @property
    def filter_data(self) -> dict[str, object]:
        try:
            value = json.loads(self.filters or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


class AlertTemplate(Base):
    """One framing of a rule's alert: a sandboxed Jinja2 text template."""

    __tablename__ = "alert_templates"

    id: Mapped[intpk]
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    rule: Mapped[AlertRule] = relationship(back_populates="templates")


class VacancyAlert(Base):
    """A vacancy alerted for a rule: its post (None when refused, with the reason)."""

    __tablename__ = "vacancy_alerts"
    __table_args__ = (
        UniqueConstraint("vacancy_id", "rule_id"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status_known"),
        Index("ix_vacancy_alerts_rule_id_created_at", "rule_id", "created_at"),
    )

    id: Mapped[intpk]
    vacancy_id: Mapped[int] = mapped_column(ForeignKey("vacancies.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_templates.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default="planned")
    reason: Mapped[str | None] = mapped_column(Text)  # why it was refused or sent to review
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # In a thread: the part (delivery part number) that carries this vacancy.
    part: Mapped[int | None]
