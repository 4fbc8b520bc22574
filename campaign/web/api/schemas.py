"""Pydantic models that document the API's requests and responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class WorkerStatus(BaseModel):
    last_tick: str | None = Field(description="RFC 3339 time of the last worker tick, or null")


class Health(BaseModel):
    status: str
    database: str
    worker: WorkerStatus


class VariantOut(BaseModel):
    id: int
    label: str
    text: str
    audience: str
    framing_tags: list[str]


class MessageOut(BaseModel):
    id: int
    title: str
    link_url: str | None
    intent: str
    context: str
    variants: list[VariantOut]


class CampaignOut(BaseModel):
    id: int
    name: str
    description: str
    messages: list[MessageOut]


class CampaignList(BaseModel):
    items: list[CampaignOut]


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: str
    last_used_at: str | None
    revoked: bool


class TokenList(BaseModel):
    items: list[TokenOut]


class ComparePost(BaseModel):
    impressions: int = Field(ge=0, le=10**12)
    clicks: int = Field(ge=0, le=10**12)
    slot: str | None = Field(default=None, description="A time slot label, e.g. 'Tue 10:00'")


class CompareArm(BaseModel):
    name: str
    impressions: int | None = Field(
        default=None, ge=0, le=10**12, description="Total views; derived from posts when omitted"
    )
    clicks: int | None = Field(default=None, ge=0, le=10**12)
    posts: list[ComparePost] | None = Field(default=None, description="Per-post counts, optional")


class CompareRequest(BaseModel):
    control_index: int = Field(default=0, ge=0, le=7, description="Which arm is the control")
    alpha: float = Field(default=0.05, gt=0, le=0.5)
    arms: list[CompareArm] = Field(min_length=2, max_length=8)


class CompareArmOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    rate: float | None
    wilson_95: list[float] | None = Field(description="[low, high]")
    prob_best: float | None
    expected_loss: float | None


class CompareComparisonOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    arm: str
    diff: float | None
    diff_95: list[float] | None
    p_value: float | None
    p_value_holm: float | None
    relative_lift: float | None
    relative_lift_95: list[float] | None
    prob_beats_control: float | None


class CompareResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    arms: list[CompareArmOut]
    comparisons: list[CompareComparisonOut]
    required_impressions_per_arm: int | None
    verdict: Literal["not_enough_data", "no_clear_difference", "better", "worse"]
    summary: str


class ChannelIn(BaseModel):
    """A new channel. Credentials are write-only: no response ever returns them."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["outbox", "manual", "x", "mastodon", "bluesky"]
    name: str = Field(min_length=1, max_length=200)
    audience: Literal["students", "graduates", "employers", "parents"] = "students"
    base_url: str | None = Field(
        default=None, max_length=500, description="Mastodon instance or Bluesky PDS address"
    )
    requires_approval: bool = False
    max_posts_per_hour: int | None = Field(default=None, ge=1, le=10000)
    max_posts_per_day: int | None = Field(default=None, ge=1, le=100000)
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="x: OAuth 1.0a keys or OAuth 2.0 tokens; mastodon: access_token; "
        "bluesky: handle and app_password. Never returned.",
    )


class ChannelOut(BaseModel):
    id: int
    kind: str
    name: str
    audience: str
    status: str
    status_detail: str | None
    base_url: str | None
    requires_approval: bool
    max_posts_per_hour: int | None
    max_posts_per_day: int | None
    has_credentials: bool
    max_characters: int | None = Field(
        description="The instance's post length limit (Mastodon), once read from the instance"
    )
    characters_per_url: int | None
    created_at: str


class ChannelList(BaseModel):
    items: list[ChannelOut]


class AttemptOut(BaseModel):
    number: int
    kind: Literal["publish", "lookup"]
    started_at: str
    finished_at: str | None
    outcome: str
    http_status: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    post_id: int
    channel_id: int
    state: str
    due_at: str
    attempts: int
    last_error: str | None
    platform_post_id: str | None
    platform_url: str | None
    published_at: str | None
    attempt_log: list[AttemptOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_after_id: int | None = Field(description="Pass as after_id for the next page")


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str | None = Field(
        default=None, description="Comma-separated states, e.g. failed,needs_review"
    )
    limit: int = Field(default=100, ge=1, le=500)
    after_id: int | None = Field(default=None, ge=0, le=2**31 - 1)
