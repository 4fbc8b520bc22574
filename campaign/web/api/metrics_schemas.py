"""Pydantic models of the engagement API: figures in (POST /metrics) and out (GET /metrics)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from campaign.web.api.drafting_schemas import Id, Str200

MAX_ITEMS = 1000
Figure = Annotated[int | None, Field(default=None, ge=0, le=2**31 - 1)]
_FIGURES = ("impressions", "clicks", "likes", "reposts", "replies", "quotes", "bookmarks",
            "profile_clicks")  # fmt: skip


class MetricItemIn(BaseModel):
    """One reading: which post, when it was read, and the figures (null or absent: not reported)."""

    model_config = ConfigDict(extra="forbid")

    post_id: Id | None = Field(
        default=None,
        description="The post; enough when it went out on one channel. Give this, "
        "external_id, or both.",
    )
    external_id: Str200 | None = Field(
        default=None, description="The network's id of the post: says which channel."
    )
    collected_at: AwareDatetime = Field(
        description="When the figures were read (RFC 3339 with an offset); not before the post "
        "went out, nor in the future"
    )
    impressions: Figure
    clicks: Figure = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="The network's own count of clicks on the post's link (tracked-link clicks "
        "are counted by the app itself)",
    )
    likes: Figure
    reposts: Figure
    replies: Figure
    quotes: Figure
    bookmarks: Figure
    profile_clicks: Figure

    @field_validator("collected_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("is out of range") from None

    @model_validator(mode="after")
    def _named_and_figured(self) -> MetricItemIn:
        if self.post_id is None and self.external_id is None:
            raise ValueError("give a post_id or an external_id")
        if all(getattr(self, name) is None for name in _FIGURES):
            raise ValueError(f"give at least one figure ({', '.join(_FIGURES)})")
        return self


class MetricsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MetricItemIn] = Field(min_length=1, max_length=MAX_ITEMS)


class MetricItemResult(BaseModel):
    index: int = Field(description="The item's position in the request, from 0")
    status: Literal["saved", "refused"]
    reason: str | None = Field(description="Why the item was refused; null when saved")
    post_id: int | None
    delivery_id: int | None
    window: str | None = Field(
        description="The post age the reading was filed at (besides 'latest'); null when "
        "younger than the first age or refused"
    )


class MetricsSaved(BaseModel):
    saved: int
    refused: int
    results: list[MetricItemResult]


class MetricsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_id: Id


class SnapshotOut(BaseModel):
    window: str = Field(description="A post age from [metrics] ages, or 'latest'")
    source: Literal["platform", "manual", "csv"]
    collected_at: str
    age_seconds: int
    late: bool = Field(description="Read too long after its age to compare like for like")
    impressions: int | None
    clicks: int | None = Field(description="The network's count of clicks on the post's link")
    likes: int | None
    reposts: int | None
    replies: int | None
    quotes: int | None
    bookmarks: int | None
    profile_clicks: int | None


class DeliveryMetricsOut(BaseModel):
    delivery_id: int
    channel: str
    external_id: str | None
    status: str
    published_at: str | None
    tracked_clicks: int = Field(description="Clicks on the app's tracked links, bots left out")
    tracked_unique_clicks: int = Field(description="Different visitors per day, summed")
    snapshots: list[SnapshotOut]


class PostMetricsOut(BaseModel):
    post_id: int
    deliveries: list[DeliveryMetricsOut]
