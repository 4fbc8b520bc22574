"""Pydantic models that document the API's requests and responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
