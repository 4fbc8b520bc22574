"""Pydantic models of the vacancy API: pushed vacancies, per-item results, lists, sources.

A pushed batch is checked item by item in the view (a bad item is refused with its reason and
the good ones are kept), so the request model only bounds the batch; `VacancyIn` documents and
checks each item.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from campaign.web.api.drafting_schemas import _storable

MAX_BATCH = 1000
Text = Annotated[str, AfterValidator(_storable)]
VacancyStatus = Literal["open", "expired", "withdrawn"]
SourceKind = Literal["feed", "csv", "push"]


class VacancyIn(BaseModel):
    """One pushed vacancy. Upserted by (this token's push source, external_id)."""

    model_config = ConfigDict(extra="forbid")

    external_id: Text = Field(min_length=1, max_length=500, description="Your id for it")
    title: Text = Field(min_length=1, max_length=500)
    employer: Text = Field(min_length=1, max_length=300)
    url: Text = Field(min_length=1, max_length=2000, description="Absolute http(s) URL")
    location: Text = Field(default="", max_length=300)
    salary: Text = Field(
        default="", max_length=500, description="As advertised; parsed when unambiguous"
    )
    closing_date: Text | None = Field(
        default=None,
        max_length=40,
        description="ISO date (end of that day in the organisation's timezone) or date-time",
    )
    description: Text = Field(
        default="", max_length=100_000, description="HTML or text; sanitised when stored"
    )
    tags: list[Annotated[Text, Field(max_length=80)]] = Field(default_factory=list, max_length=50)


class VacancyPushIn(BaseModel):
    """Either one vacancy (the fields of VacancyIn at the top level) or {"items": [...]}."""

    model_config = ConfigDict(extra="allow")

    items: list[Any] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} vacancies, each with the fields of VacancyIn",
    )


class PushItemResult(BaseModel):
    index: int = Field(description="Position in the batch, from 0")
    external_id: str | None
    result: Literal["created", "updated", "unchanged", "refused"]
    id: int | None = Field(description="The vacancy's id (null when refused)")
    reason: str | None = Field(description="Why it was refused")
    warnings: list[str]


class PushCounts(BaseModel):
    created: int
    updated: int
    unchanged: int
    refused: int


class VacancyPushOut(BaseModel):
    source_id: int
    counts: PushCounts
    results: list[PushItemResult]


class VacancyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "expired", "withdrawn", "all"] = "open"
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class VacancyOut(BaseModel):
    id: int
    source_id: int
    external_id: str
    title: str
    employer: str
    location: str
    url: str
    description_html: str
    description_text: str
    posted_at: dt.datetime | None
    closes_at: dt.datetime | None
    salary_text: str
    salary_min: str | None = Field(description="Decimal as a string")
    salary_max: str | None = Field(description="Decimal as a string")
    salary_currency: str | None
    salary_period: str | None
    flags: list[str]
    warnings: list[str]
    tags: list[str]
    status: VacancyStatus
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    updated_at: dt.datetime


class VacancyList(BaseModel):
    items: list[VacancyOut]
    total: int
    next_offset: int | None = Field(description="Pass as offset for the next page")


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    kind: Literal["feed", "csv"] = "feed"
    url: Text = Field(default="", max_length=2000, description="Needed for a feed")
    poll_interval_minutes: int = Field(default=60, ge=5, le=10080)
    withdraw_after_polls: int = Field(default=3, ge=1, le=100)
    enabled: bool = True


class SourceOut(BaseModel):
    id: int
    name: str
    kind: SourceKind
    url: str | None
    enabled: bool
    poll_interval_minutes: int
    withdraw_after_polls: int
    last_polled_at: dt.datetime | None
    next_poll_at: dt.datetime | None
    last_status: Literal["ok", "not_modified", "error"] | None
    last_error: str | None
    last_items: int | None
    last_new: int | None
    last_updated: int | None
    last_warnings: list[str]
    consecutive_errors: int
    created_at: dt.datetime


class SourceList(BaseModel):
    items: list[SourceOut]
