"""Channels and deliveries: what is connected, and what happened to each post on each channel."""

from __future__ import annotations

from typing import Any

from flask import request
from spectree import Response as SpecResponse

from campaign.models import Channel, Delivery
from campaign.services import NotFound, ServiceError, campaigns, deliveries, delivery_reads
from campaign.services.audit import Actor
from campaign.services.channels import NewChannel, create_channel
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.errors import ApiError
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.resources import rfc3339
from campaign.web.api.schemas import (
    ChannelIn,
    ChannelList,
    ChannelOut,
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    ErrorResponse,
)
from campaign.web.context import get_session, now, state

_ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse}


def _channel(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.display_name,
        "audience": channel.audience,
        "status": channel.status,
        "status_detail": channel.status_detail,
        "base_url": channel.base_url,
        "requires_approval": channel.requires_approval,
        "max_posts_per_hour": channel.max_posts_per_hour,
        "max_posts_per_day": channel.max_posts_per_day,
        "has_credentials": channel.credentials_encrypted is not None,
        "max_characters": channel.max_characters,
        "characters_per_url": channel.characters_per_url,
        "created_at": rfc3339(channel.created_at),
    }


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "post_id": delivery.post_id,
        "channel_id": delivery.channel_id,
        "state": delivery.status,
        "due_at": rfc3339(delivery.due_at),
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "platform_post_id": delivery.external_id,
        "platform_url": delivery.external_url,
        "published_at": rfc3339(delivery.published_at),
        "attempt_log": [
            {
                "number": a.number,
                "kind": a.kind,
                "started_at": rfc3339(a.started_at),
                "finished_at": rfc3339(a.finished_at),
                "outcome": a.outcome,
                "http_status": a.http_status,
                "error": a.error,
            }
            for a in delivery.attempt_log
        ],
    }


def _token_actor() -> Actor:
    token = current_token()
    return Actor(organisation_id=token.organisation_id, label=f"API token {token.prefix}")


@bp.get("/channels")
@spec.validate(
    resp=SpecResponse(HTTP_200=ChannelList, **_ERRORS), tags=["channels"], security={"bearer": []}
)
@token_required("admin")
def list_channels() -> Any:
    """The organisation's channels; credentials are never returned."""
    found = campaigns.list_channels(get_session(), current_token().organisation_id)
    return {"items": [_channel(c) for c in found]}


@bp.post("/channels")
@spec.validate(
    json=ChannelIn,
    headers=IdempotencyHeaders,
    resp=SpecResponse(
        HTTP_201=ChannelOut,
        HTTP_400=ErrorResponse,
        HTTP_409=ErrorResponse,
        HTTP_422=ErrorResponse,
        **_ERRORS,
    ),
    tags=["channels"],
    security={"bearer": []},
)
@token_required("admin")
@idempotent
def add_channel() -> Any:
    """Add a channel; credentials are checked for shape and stored encrypted, write-only."""
    body = ChannelIn.model_validate(request.get_json(silent=True) or {})
    spec_in = NewChannel(
        kind=body.kind,
        display_name=body.name,
        audience=body.audience,
        base_url=body.base_url,
        requires_approval=body.requires_approval,
        max_posts_per_hour=body.max_posts_per_hour,
        max_posts_per_day=body.max_posts_per_day,
    )
    db = get_session()
    try:
        channel = create_channel(
            db,
            current_token().organisation_id,
            spec_in,
            dict(body.credentials),
            state().credentials,
            _token_actor(),
            now(),
        )
    except ServiceError as exc:
        raise ApiError(422, str(exc)) from exc
    db.commit()
    return _channel(channel), 201


@bp.get("/deliveries")
@spec.validate(
    query=DeliveryQuery,
    resp=SpecResponse(HTTP_200=DeliveryList, HTTP_422=ErrorResponse, **_ERRORS),
    tags=["deliveries"],
    security={"bearer": []},
)
@token_required("read")
def list_deliveries() -> Any:
    """Deliveries by id, optionally filtered by state, each with its attempts."""
    query = DeliveryQuery.model_validate(request.args.to_dict())
    states = [s.strip() for s in (query.state or "").split(",") if s.strip()]
    try:
        found = delivery_reads.find_deliveries(
            get_session(),
            current_token().organisation_id,
            states,
            limit=query.limit,
            after_id=query.after_id,
        )
    except ServiceError as exc:
        raise ApiError(422, str(exc), details={"field": "state"}) from exc
    last = found[-1].id if len(found) == query.limit else None
    return {"items": [_delivery(d) for d in found], "next_after_id": last}


@bp.get("/deliveries/<int:delivery_id>")
@spec.validate(
    resp=SpecResponse(HTTP_200=DeliveryOut, HTTP_404=ErrorResponse, **_ERRORS),
    tags=["deliveries"],
    security={"bearer": []},
)
@token_required("read")
def get_delivery(delivery_id: int) -> Any:
    """One delivery: state, attempts (time, outcome, platform error), platform id and URL."""
    try:
        found = deliveries.get_delivery(get_session(), current_token().organisation_id, delivery_id)
    except NotFound as exc:
        raise ApiError(404, "no such delivery") from exc
    return _delivery(found)
