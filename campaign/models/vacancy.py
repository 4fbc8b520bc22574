"""Vacancy sources (polled feeds, uploaded CSV files, the push API) and the vacancies they hold.

A `Vacancy` is one job, de-duplicated within its organisation across every source: the layered
keys (`guid_key`, `url_key`, `fingerprint`, with `title_key` to tell jobs sharing a URL apart)
are what `campaign.vacancies.dedupe` matches on. `content_hash` says whether an item changed.
A vacancy is 'open' until its closing time passes ('expired') or its full feed stops listing it
for `withdraw_after_polls` successive polls ('withdrawn'); seen again with a later closing date,
it is open again.

A `VacancyListing` remembers that a source's GUID landed on a vacancy whose own keys are another
source's (the same job listed by two sources), so that the source's later edits of that item
(a new title, say) keep updating the same vacancy.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaign.db import Base, intpk, utcnow

SOURCE_KINDS = ("feed", "csv", "push")
SOURCE_STATUSES = ("ok", "not_modified", "error")
VACANCY_STATUSES = ("open", "expired", "withdrawn")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


def _json_list(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


class VacancySource(Base):
    """Where vacancies come from: a feed URL polled on an interval, a CSV upload, or pushes."""

    __tablename__ = "vacancy_sources"
    __table_args__ = (
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind_known"),
        CheckConstraint(
            "last_status is null or " + _in("last_status", SOURCE_STATUSES), name="status_known"
        ),
        CheckConstraint("poll_interval_minutes > 0", name="interval_positive"),
        CheckConstraint("withdraw_after_polls > 0", name="withdraw_after_positive"),
        Index("ix_vacancy_sources_kind_enabled_next_poll_at", "kind", "enabled", "next_poll_at"),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    url: Mapped[str | None] = mapped_column(String(2000))
    poll_interval_minutes: Mapped[int] = mapped_column(default=60)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Conditional GET state, from the last 200 response.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # JSON object of item hash -> guid from the last full parse, for incremental re-polls.
    item_hashes: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[dt.datetime | None]
    next_poll_at: Mapped[dt.datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(20))
    # The fetcher's or parser's message, in plain words (None after a good poll).
    last_error: Mapped[str | None] = mapped_column(Text)
    last_items: Mapped[int | None]
    last_new: Mapped[int | None]
    last_updated: Mapped[int | None]
    last_warnings: Mapped[str | None] = mapped_column(Text)  # JSON list of strings
    consecutive_errors: Mapped[int] = mapped_column(default=0)
    withdraw_after_polls: Mapped[int] = mapped_column(default=3)
    # The push source of an API token, created on the token's first push.
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), unique=True
    )
    # A worker's claim while it polls (so two workers do not poll one source at once).
    claimed_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def warning_list(self) -> list[str]:
        return _json_list(self.last_warnings)


class Vacancy(Base):
    """One job within an organisation, whichever source(s) listed it."""

    __tablename__ = "vacancies"
    __table_args__ = (
        CheckConstraint(_in("status", VACANCY_STATUSES), name="status_known"),
        CheckConstraint("missing_polls >= 0", name="missing_polls_not_negative"),
        Index("ix_vacancies_organisation_id_guid_key", "organisation_id", "guid_key"),
        Index("ix_vacancies_organisation_id_url_key", "organisation_id", "url_key"),
        Index("ix_vacancies_organisation_id_fingerprint", "organisation_id", "fingerprint"),
        Index(
            "ix_vacancies_organisation_id_status_closes_at",
            "organisation_id",
            "status",
            "closes_at",
        ),
        Index("ix_vacancies_source_id_external_id", "source_id", "external_id"),
        Index("ix_vacancies_status_closes_at", "status", "closes_at"),
    )

    id: Mapped[intpk]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    # The source that last listed it (an item from another source updating it moves it there).
    source_id: Mapped[int] = mapped_column(ForeignKey("vacancy_sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(500), default="")
    title: Mapped[str] = mapped_column(String(500))
    employer: Mapped[str] = mapped_column(String(300), default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    url: Mapped[str] = mapped_column(String(2000), default="")
    description_html: Mapped[str] = mapped_column(Text, default="")
    description_text: Mapped[str] = mapped_column(Text, default="")
    posted_at: Mapped[dt.datetime | None]
    closes_at: Mapped[dt.datetime | None]
    salary_text: Mapped[str] = mapped_column(String(500), default="")
    salary_min: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    salary_max: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    salary_currency: Mapped[str | None] = mapped_column(String(3))
    salary_period: Mapped[str | None] = mapped_column(String(10))
    flags: Mapped[str] = mapped_column(String(200), default="")  # comma-separated, sorted
    warnings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    guid_key: Mapped[str | None] = mapped_column(String(1000))
    url_key: Mapped[str | None] = mapped_column(String(1000))
    fingerprint: Mapped[str | None] = mapped_column(String(1000))
    title_key: Mapped[str] = mapped_column(String(1000), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    status: Mapped[str] = mapped_column(String(10), default="open")
    # Successive successful full polls of its source that did not list it.
    missing_polls: Mapped[int] = mapped_column(default=0)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    source: Mapped[VacancySource] = relationship()

    @property
    def flag_list(self) -> list[str]:
        return [flag for flag in self.flags.split(",") if flag]

    @property
    def warning_list(self) -> list[str]:
        return _json_list(self.warnings)

    @property
    def tag_list(self) -> list[str]:
        return _json_list(self.tags)


class VacancyListing(Base):
    """A source's GUID (its stored `guid_key`) that names a vacancy held under other keys."""

    __tablename__ = "vacancy_listings"
    __table_args__ = (UniqueConstraint("source_id", "guid_key"),)

    id: Mapped[intpk]
    source_id: Mapped[int] = mapped_column(ForeignKey("vacancy_sources.id", ondelete="CASCADE"))
    guid_key: Mapped[str] = mapped_column(String(1000))
    vacancy_id: Mapped[int] = mapped_column(
        ForeignKey("vacancies.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
