"""The feed edge's plain records: what a parser extracted, and the normalised vacancy.

Parsers return `RawItem`s inside a `ParseResult`; `normalise.normalise` turns one `RawItem` into
a `Vacancy`. Nothing here knows about the database or Flask.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

# Salary and review flags carried on a Vacancy.
FLAG_UNPAID = "unpaid"
FLAG_COMMISSION = "commission"
FLAG_SALARY_MISSING = "salary_missing"
FLAG_SALARY_AMBIGUOUS = "salary_ambiguous"
FLAG_SALARY_PREDICTED = "salary_predicted"
FLAG_INVALID_DATE = "invalid_date"
FLAG_INVALID_URL = "invalid_url"


@dataclass
class RawItem:
    """One item as a parser found it, before any interpretation (all text stripped only)."""

    position: int  # 1-based position in the source document (row number for CSV)
    guid: str = ""  # GUID, external id or reference number
    title: str = ""
    title_is_html: bool = False  # True when the title is HTML/escaped text to decode once
    link: str = ""  # as found (possibly relative)
    base_url: str = ""  # xml:base or the source URL, for resolving `link`
    description_html: str = ""
    employer: str = ""
    location: str = ""
    salary_text: str = ""
    salary_min: Decimal | None = None  # structured salary fields, when the source has them
    salary_max: Decimal | None = None
    salary_currency: str = ""
    salary_period: str = ""
    salary_predicted: bool = False
    posted_text: str = ""
    posted_at: dt.datetime | None = None  # already parsed (aware), when the source did so
    closing_text: str = ""
    tags: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemError:
    """An item (or CSV row) that could not be read; the rest of the document is kept."""

    position: int
    message: str


@dataclass
class ParseResult:
    """A parsed document: its items, per-item errors, document warnings and detected format.

    `error` is set when the whole document was refused (malformed or hostile); then `items`
    is empty.
    """

    format: str
    items: list[RawItem] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class DedupeKeys:
    """The layered identity of a vacancy: GUID, normalised URL, employer/title/location."""

    guid: str | None
    url: str | None
    fingerprint: str | None
    title: str  # normalised title, to tell different jobs on one URL apart


@dataclass
class Vacancy:
    """A normalised vacancy: absolute URL, sanitised HTML, aware UTC dates, parsed salary."""

    position: int
    external_id: str
    title: str
    employer: str
    location: str
    url: str
    description_html: str
    description_text: str
    posted_at: dt.datetime | None
    closes_at: dt.datetime | None
    closing_phrase: str  # the raw text the closing date came from ("" if structured or none)
    salary_text: str
    salary_min: Decimal | None
    salary_max: Decimal | None
    salary_currency: str | None
    salary_period: str | None
    flags: frozenset[str]
    warnings: list[str]
    keys: DedupeKeys
    content_hash: str
    tags: tuple[str, ...] = ()
