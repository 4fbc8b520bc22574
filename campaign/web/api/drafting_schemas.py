"""Pydantic models of the drafting and posting API: campaigns, messages, variants, posts.

Request models bound what the database can hold (ids within its integer range, no NUL or broken
characters in strings); the services check the meaning and answer with messages naming the field.
Fields of a PATCH body are all optional: only those sent are changed, and `null` clears the
fields that may be empty (those typed "or null").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# The same values as campaign.models.AUDIENCES and POST_STATUSES (a test keeps them in step).
Audience = Literal["students", "graduates", "employers", "parents"]
PostStatus = Literal["draft", "pending_approval", "approved", "rejected", "cancelled"]


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded at all.
    for ch in value:
        if ch == "\x00" or unicodedata.category(ch) == "Cs":
            raise ValueError(f"contains a character that cannot be stored (U+{ord(ch):04X})")
    return value


# Strings that can be stored, by their most characters (the columns' lengths, where they have one).
Str40 = Annotated[str, AfterValidator(_storable), Field(max_length=40)]
Str80 = Annotated[str, AfterValidator(_storable), Field(max_length=80)]
Str120 = Annotated[str, AfterValidator(_storable), Field(max_length=120)]
Str200 = Annotated[str, AfterValidator(_storable), Field(max_length=200)]
Str500 = Annotated[str, AfterValidator(_storable), Field(max_length=500)]
Str1000 = Annotated[str, AfterValidator(_storable), Field(max_length=1000)]
Str2000 = Annotated[str, AfterValidator(_storable), Field(max_length=2000)]
LongStr = Annotated[str, AfterValidator(_storable), Field(max_length=20_000)]


def _optional(description: str | None = None, **bounds: Any) -> Any:
    """A PATCH field: may be left out; its schema shows no null default."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, description=description, json_schema_extra=drop_default, **bounds)


# --- campaigns, messages, variants ----------------------------------------------------------


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Str200 = Field(description="Required")
    description: LongStr = ""
    goal: LongStr = Field(
        default="", description="What it is for, e.g. '200 finalists book a CV review by May'"
    )
    audience: Audience | None = Field(default=None, description="null: everyone")
    starts_on: dt.date | None = None
    ends_on: dt.date | None = Field(default=None, description="Not before starts_on")
    owner_id: Id | None = Field(default=None, description="A member of the organisation")


class CampaignPatch(BaseModel):
    """Only the fields sent change; name may not be null."""

    model_config = ConfigDict(extra="forbid")

    name: Str200 = _optional()
    description: LongStr = _optional()
    goal: LongStr = _optional()
    audience: Audience | None = _optional("null: everyone")
    starts_on: dt.date | None = _optional()
    ends_on: dt.date | None = _optional()
    owner_id: Id | None = _optional()


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Str200 = Field(description="Required")
    link_url: Str2000 | None = Field(default=None, description="The one link (http or https)")
    resource_name: Str200 | None = Field(
        default=None, description="Or the resource it is about, when there is no link"
    )
    intent: Str500 = Field(default="", description="What the reader should do")
    context: LongStr = Field(default="", description="Why it matters now")


class MessagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Str200 = _optional()
    link_url: Str2000 | None = _optional()
    resource_name: Str200 | None = _optional()
    intent: Str500 = _optional()
    context: LongStr = _optional()


TagKeys = Annotated[
    list[Annotated[str, AfterValidator(_storable), Field(max_length=40)]],
    Field(max_length=20, description="Keys from GET /framing-tags; archived keys are refused"),
]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Str120 = Field(description="Required, e.g. 'Question'")
    text: LongStr = Field(description="The post as this framing says it; stored normalised")
    audience: Audience
    framing_tags: TagKeys = Field(default_factory=list)


class VariantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Str120 = _optional()
    text: LongStr = _optional()
    audience: Audience = _optional()
    framing_tags: TagKeys = _optional("Replaces the variant's tags")


class VariantDetail(BaseModel):
    id: int
    message_id: int
    label: str
    text: str
    audience: str
    framing_tags: list[str]
    created_at: str


class MessageDetail(BaseModel):
    id: int
    campaign_id: int
    title: str
    link_url: str | None
    resource_name: str | None
    intent: str
    context: str
    created_at: str
    variants: list[VariantDetail]
    warnings: list[str] = Field(description="e.g. add at least two framings to compare them")


class CampaignDetail(BaseModel):
    id: int
    name: str
    description: str
    goal: str
    audience: str | None
    starts_on: str | None = Field(description="ISO date")
    ends_on: str | None = Field(description="ISO date, inclusive")
    owner_id: int | None
    archived: bool
    created_at: str
    messages: list[MessageDetail]


class FramingTagOut(BaseModel):
    id: int
    key: str
    label: str
    position: int
    archived: bool


class FramingTagList(BaseModel):
    items: list[FramingTagOut]


class FramingTagQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_archived: bool = False


class FramingTagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Str40 = Field(description="2 to 40 of a-z, 0-9 and _, starting with a letter; fixed")
    label: Str80


class FramingTagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Str80 = _optional()
    archived: bool = _optional("Archived tags stay on variants but cannot be chosen again")


# --- posts ----------------------------------------------------------------------------------

_YEAR = re.compile(r"\s*(\d{4})-")


def _sane_year(value: str | None) -> str | None:
    found = _YEAR.match(value or "")
    if found and not 1900 <= int(found.group(1)) <= 2999:
        raise ValueError("the year must be between 1900 and 2999")
    return value


When = Annotated[
    str,
    AfterValidator(_storable),
    AfterValidator(_sane_year),
    Field(
        max_length=64,
        description="Local wall time in the organisation's timezone, 'YYYY-MM-DD HH:MM', or ISO "
        "8601 with an offset ('2026-03-10T09:00:00+00:00'). A wall time inside a spring-forward "
        "gap moves forward (see notes); one in the autumn overlap means its first occurrence.",
    ),
]


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: LongStr = Field(description="Checked against each channel's limit; stored normalised")
    channel_ids: list[Id] = Field(max_length=50, description="At least one")
    when: When | None = Field(default=None, description="Required unless use_queue")
    use_queue: bool = Field(default=False, description="Each channel's next free queue slot")
    link_url: Str2000 | None = None
    variant_id: Id | None = Field(default=None, description="The framing this post carries")
    blackout_override: Str1000 | None = Field(
        default=None, description="Why it must go out inside a blackout key date"
    )
    submit: bool = Field(
        default=False,
        description="Submit at once: approved and scheduled, or waiting for a manager when a "
        "channel requires approval (an admin-scoped token acts as a manager)",
    )


class PostPatch(BaseModel):
    """Fields left out keep their value; the time is the post's time unless `when` or
    `use_queue` is sent (so every channel gets the same time again)."""

    model_config = ConfigDict(extra="forbid")

    text: LongStr = _optional()
    channel_ids: list[Id] = _optional(max_length=50)
    when: When = _optional()
    use_queue: bool = _optional()
    link_url: Str2000 | None = _optional()
    variant_id: Id | None = _optional()
    blackout_override: Str1000 | None = _optional()


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Str2000 = Field(default="", description="Shown to the post's author")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Str2000 = Field(min_length=1, description="Required: why, so it can be put right")


class PostQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: PostStatus | None = None
    from_: dt.date | None = Field(
        default=None,
        alias="from",
        description="First local date (organisation's timezone) of scheduled_for, inclusive",
    )
    to: dt.date | None = Field(default=None, description="Last local date, inclusive")
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=100_000)

    @field_validator("to")
    @classmethod
    def _ordered(cls, value: dt.date | None, info: Any) -> dt.date | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError("'to' is before 'from'")
        return value


class PostDeliveryOut(BaseModel):
    id: int
    channel_id: int
    channel_name: str
    channel_kind: str
    state: str
    due_at: str
    published_at: str | None
    platform_url: str | None
    last_error: str | None


class PostOut(BaseModel):
    id: int
    status: PostStatus
    text: str
    link_url: str | None
    variant_id: int | None
    scheduled_for: str | None = Field(description="RFC 3339, UTC: the earliest delivery")
    scheduled_for_local: str | None = Field(description="The same, in the organisation's zone")
    schedule_note: str | None = Field(description="e.g. moved out of a spring-forward gap")
    blackout_override: str | None
    created_at: str
    updated_at: str | None
    submitted_at: str | None
    reviewed_at: str | None
    review_comment: str | None
    deliveries: list[PostDeliveryOut]


class HistoryEntry(BaseModel):
    id: int
    action: str = Field(description="post.created, post.edited, post.submitted, post.approved, …")
    at: str
    actor: str
    detail: dict[str, Any]


class PostDetail(PostOut):
    history: list[HistoryEntry] = Field(description="The audit trail, oldest first")


class PostList(BaseModel):
    items: list[PostOut]
    next_offset: int | None = Field(description="Pass as offset for the next page")


class PostSaved(BaseModel):
    post: PostOut
    warnings: list[str] = Field(description="Shown, not refused: duplicates, blackout overrides")
    notes: list[str] = Field(description="e.g. the time moved out of a spring-forward gap")
