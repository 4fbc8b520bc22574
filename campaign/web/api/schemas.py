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
