"""Pydantic models of the experiments API: planning, the plan, the assignment, the decision."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from campaign.web.api.drafting_schemas import Id, LongStr, Str40, Str200

# The same values as campaign.models.experiment (a test keeps them in step).
ExperimentStatus = Literal["planned", "running", "concluded", "abandoned"]
PrimaryMetric = Literal["clicks_per_impression", "clicks_per_post"]
VerdictRule = Literal["planned", "sequential"]
Decision = Literal["adopt_variant", "keep_control", "no_difference", "inconclusive"]


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Str200 = Field(description="Required")
    message_id: Id = Field(description="The message whose variants are compared")
    variant_ids: list[Id] = Field(
        min_length=2,
        max_length=6,
        description="2 to 6 variants of the message; the first is the control",
    )
    channel_ids: list[Id] = Field(min_length=1, max_length=20)
    hypothesis: LongStr = Field(description="Required: what you expect, and why")
    primary_metric: PrimaryMetric | None = Field(
        default=None,
        description="null: clicks per impression, or per post when no chosen channel reports "
        "impressions",
    )
    report_age_seconds: int = Field(
        default=86400, ge=3600, le=90 * 86400, description="Posts are compared at this age"
    )
    verdict_rule: VerdictRule = "planned"
    alpha: float = Field(default=0.05, ge=0.0001, lt=0.5)
    minimum_lift: float = Field(
        default=0.5, gt=0, le=10, description="Smallest relative lift worth acting on (0.5 = 50%)"
    )
    baseline_rate: float | None = Field(
        default=None, gt=0, lt=1, description="null: the organisation's history, else assumed 1%"
    )
    impressions_per_post: int | None = Field(
        default=None, ge=1, le=10**9, description="null: the history's median, else assumed"
    )
    posts_per_arm: int | None = Field(
        default=None, ge=2, le=150, description="null: what the power calculation asks for"
    )
    times: list[Str40] = Field(
        default_factory=list,
        max_length=300,
        description="Times for every chosen channel (local wall time or ISO 8601); empty: the "
        "channels' next free queue slots, as many as the plan needs",
    )


class ConcludeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    chosen_arm_id: Id | None = Field(default=None, description="Required to adopt a variant")
    learning: LongStr = Field(min_length=1, description="What we learnt (required)")


class AbandonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: LongStr = Field(min_length=1, description="Why (kept in the learning library)")


class ExperimentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ExperimentStatus | None = None


class ArmOut(BaseModel):
    id: int
    position: int = Field(description="0 is the control")
    name: str
    variant_id: int | None
    published_posts: int
    scheduled_posts: int


class SlotOut(BaseModel):
    id: int
    channel_id: int
    scheduled_at: str = Field(description="RFC 3339, UTC")
    position: int = Field(description="Order within its channel")
    arm_id: int | None
    post_id: int | None = Field(description="Made when the experiment is approved")


class ExperimentOut(BaseModel):
    id: int
    name: str
    status: ExperimentStatus
    message_id: int | None
    hypothesis: str
    primary_metric: PrimaryMetric
    report_age_seconds: int
    verdict_rule: VerdictRule
    alpha: float
    minimum_lift: float
    baseline_rate: float | None
    planned_posts_per_arm: int
    planned_impressions_per_arm: int | None
    seed: int
    decision: Decision | None
    chosen_arm_id: int | None
    learning: str
    created_at: str
    approved_at: str | None
    concluded_at: str | None
    arms: list[ArmOut]


class ExperimentDetail(ExperimentOut):
    plan: list[str] = Field(description="The power calculation in words")
    slots: list[SlotOut]


class ExperimentList(BaseModel):
    items: list[ExperimentOut]
