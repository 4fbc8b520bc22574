"""Campaigns, messages, variants, the framing vocabulary and posts through the API.

A token acts in its organisation as an API client with a role: a token with the `admin` scope
acts as an admin (so as a manager when approving), any other token as staff. Reading needs
`read`; writing needs `posts:write`; approving and rejecting posts, and changing the framing
vocabulary, need `admin`. Service refusals are 422 with the reason (details.field names the
field), another organisation's ids are 404, and a post being published right now is 409.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from spectree import Response as SpecResponse

from campaign.models import (
    AuditEvent,
    Campaign,
    FramingTag,
    Message,
    Organisation,
    Post,
    Role,
    Variant,
)
from campaign.services import NotFound, PermissionDenied, ServiceError, campaigns, drafting, posts
from campaign.services.audit import Actor
from campaign.services.local_time import format_local, resolve_local
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.drafting_schemas import (
    CampaignDetail,
    CampaignIn,
    CampaignPatch,
    FramingTagIn,
    FramingTagList,
    FramingTagOut,
    FramingTagPatch,
    FramingTagQuery,
    MessageDetail,
    MessageIn,
    MessagePatch,
    PostDetail,
    PostIn,
    PostList,
    PostOut,
    PostPatch,
    PostQuery,
    PostSaved,
    RejectIn,
    ReviewIn,
    VariantDetail,
    VariantIn,
    VariantPatch,
)
from campaign.web.api.errors import ApiError
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.resources import rfc3339
from campaign.web.api.schemas import ErrorResponse
from campaign.web.context import get_session, now

M = TypeVar("M", bound=BaseModel)
_BEARER: dict[str, list[str]] = {"bearer": []}


def _responses(ok: int, model: type[BaseModel] | None, *errors: int) -> SpecResponse:
    codes = {f"HTTP_{code}": ErrorResponse for code in (401, 403, *errors)}
    return SpecResponse(**{f"HTTP_{ok}": model}, **codes)


# Every POST takes an Idempotency-Key: a malformed one is 400, a reused one 409.
_POSTED = (400, 409, 422)


# --- plumbing -------------------------------------------------------------------------------


def token_role(scopes: list[str]) -> Role:
    """The role a token acts with: admin for an `admin`-scoped token, staff otherwise."""
    return Role.ADMIN if "admin" in scopes else Role.STAFF


def _actor() -> Actor:
    token = current_token()
    return Actor(
        organisation_id=token.organisation_id,
        label=f"API token {token.prefix}",
        role=token_role(token.scope_list).value,
    )


def _org_id() -> int:
    return current_token().organisation_id


def _organisation() -> Organisation:
    return current_token().organisation


def _body(model: type[M]) -> M:
    """The JSON body as `model`; spectree has checked it already unless it was not JSON."""
    payload = request.get_json(silent=True)
    if payload is None:
        if request.get_data().strip():
            raise ApiError(422, "body: send a JSON object", details={"body": "not JSON"})
        payload = {}
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        details = {
            ".".join(str(part) for part in item.get("loc", ())) or "body": item.get("msg", "")
            for item in exc.errors()
        }
        first = next(iter(details.items()))
        raise ApiError(422, f"{first[0]}: {first[1]}", details=details) from exc


def _publishing_now(exc: ServiceError) -> bool:
    # posts.py says so in words until it raises a subclass for it (see the issue #15 notes).
    busy = getattr(posts, "PublishingNow", None)
    if busy is not None:
        return isinstance(exc, busy)
    return "being published" in str(exc) and "right now" in str(exc)


@contextmanager
def _answering(not_found: int = 404, field: str | None = None) -> Iterator[None]:
    """Service refusals as API errors; whatever the service flushed is rolled back."""
    details: dict[str, Any] = {"field": field} if field else {}
    try:
        yield
    except NotFound as exc:
        get_session().rollback()
        message = f"{field}: {exc}" if field else str(exc)
        raise ApiError(not_found, message, details=details) from exc
    except PermissionDenied as exc:
        get_session().rollback()
        raise ApiError(403, str(exc)) from exc
    except ServiceError as exc:
        get_session().rollback()
        details = {}
        if isinstance(exc, drafting.FieldError):
            details["field"] = exc.field
        problems = getattr(exc, "problems", None)
        if problems:
            details["problems"] = list(problems)
        status = 409 if _publishing_now(exc) else 422
        raise ApiError(status, str(exc), details=details) from exc


def _commit() -> None:
    get_session().commit()


# --- representations ------------------------------------------------------------------------


def _variant(variant: Variant) -> dict[str, Any]:
    return {
        "id": variant.id,
        "message_id": variant.message_id,
        "label": variant.label,
        "text": variant.text,
        "audience": variant.audience,
        "framing_tags": [
            t.key for t in sorted(variant.framing_tags, key=lambda t: (t.position, t.id))
        ],
        "created_at": rfc3339(variant.created_at),
    }


def _message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "campaign_id": message.campaign_id,
        "title": message.title,
        "link_url": message.link_url,
        "resource_name": message.resource_name,
        "intent": message.intent,
        "context": message.context,
        "created_at": rfc3339(message.created_at),
        "variants": [_variant(v) for v in message.variants],
        "warnings": drafting.message_warnings(message),
    }


def _campaign(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "goal": campaign.goal,
        "audience": campaign.audience,
        "starts_on": campaign.starts_on.isoformat() if campaign.starts_on else None,
        "ends_on": campaign.ends_on.isoformat() if campaign.ends_on else None,
        "owner_id": campaign.owner_id,
        "archived": campaign.archived,
        "created_at": rfc3339(campaign.created_at),
        "messages": [_message(m) for m in campaign.messages],
    }


def _tag(tag: FramingTag) -> dict[str, Any]:
    return {
        "id": tag.id,
        "key": tag.key,
        "label": tag.label,
        "position": tag.position,
        "archived": tag.archived,
    }


def _post(post: Post, zone: str) -> dict[str, Any]:
    return {
        "id": post.id,
        "status": post.status,
        "text": post.text,
        "link_url": post.link_url,
        "variant_id": post.variant_id,
        "scheduled_for": rfc3339(post.scheduled_for),
        "scheduled_for_local": format_local(post.scheduled_for, zone)
        if post.scheduled_for
        else None,
        "schedule_note": post.schedule_note,
        "blackout_override": post.blackout_override,
        "created_at": rfc3339(post.created_at),
        "updated_at": rfc3339(post.updated_at),
        "submitted_at": rfc3339(post.submitted_at),
        "reviewed_at": rfc3339(post.reviewed_at),
        "review_comment": post.review_comment,
        "deliveries": [
            {
                "id": d.id,
                "channel_id": d.channel_id,
                "channel_name": d.channel.display_name,
                "channel_kind": d.channel.kind,
                "state": d.status,
                "due_at": rfc3339(d.due_at),
                "published_at": rfc3339(d.published_at),
                "platform_url": d.external_url,
                "last_error": d.last_error,
                "part": d.part,  # 0: the post itself; n > 0: the n-th reply of its thread
            }
            for d in post.deliveries
        ],
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "at": rfc3339(event.created_at),
        "actor": event.actor_label,
        "detail": event.detail if isinstance(event.detail, dict) else {"value": event.detail},
    }


def _saved(saved: posts.Saved, zone: str) -> dict[str, Any]:
    return {
        "post": _post(saved.post, zone),
        "warnings": list(saved.warnings),
        "notes": list(saved.notes),
    }


# --- campaigns ------------------------------------------------------------------------------


@bp.get("/campaigns/<int:campaign_id>")
@spec.validate(resp=_responses(200, CampaignDetail, 404), tags=["campaigns"], security=_BEARER)
@token_required("read")
def get_campaign(campaign_id: int) -> Any:
    """One campaign (archived ones too) with its messages, variants and warnings. Scope: read."""
    with _answering():
        found = campaigns.get_campaign(get_session(), _org_id(), campaign_id)
    return _campaign(found)


@bp.post("/campaigns")
@spec.validate(
    json=CampaignIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, CampaignDetail, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def create_campaign() -> Any:
    """Create a campaign. Scope: posts:write.

    The owner must be a member of the organisation; ends_on may not be before starts_on.
    """
    body = _body(CampaignIn)
    data = drafting.CampaignInput(**body.model_dump())
    with _answering():
        created = drafting.create_campaign(get_session(), _org_id(), data, _actor(), now())
    answer = _campaign(created)
    _commit()
    return answer, 201


@bp.patch("/campaigns/<int:campaign_id>")
@spec.validate(
    json=CampaignPatch,
    resp=_responses(200, CampaignDetail, 404, 422),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
def update_campaign(campaign_id: int) -> Any:
    """Change the fields sent; an archived campaign is read-only (422). Scope: posts:write."""
    body = _body(CampaignPatch)
    db = get_session()
    with _answering():
        current = campaigns.get_campaign(db, _org_id(), campaign_id)
        data = drafting.CampaignInput(
            **_merged(
                body,
                current,
                ("name", "description", "goal", "audience", "starts_on", "ends_on", "owner_id"),
            )
        )
        changed = drafting.update_campaign(db, _org_id(), campaign_id, data, _actor(), now())
    answer = _campaign(changed)
    _commit()
    return answer


@bp.post("/campaigns/<int:campaign_id>/archive")
@spec.validate(
    headers=IdempotencyHeaders,
    resp=_responses(200, CampaignDetail, 404, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def archive_campaign(campaign_id: int) -> Any:
    """Archive a campaign: it leaves the plan and becomes read-only. Scope: posts:write."""
    return _campaign_change(campaign_id, drafting.archive_campaign)


def _campaign_change(campaign_id: int, change: Any) -> Any:
    db = get_session()
    with _answering():
        change(db, _org_id(), campaign_id, _actor(), now())
        changed = campaigns.get_campaign(db, _org_id(), campaign_id)
    answer = _campaign(changed)
    _commit()
    return answer


@bp.post("/campaigns/<int:campaign_id>/restore")
@spec.validate(
    headers=IdempotencyHeaders,
    resp=_responses(200, CampaignDetail, 404, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def restore_campaign(campaign_id: int) -> Any:
    """Bring an archived campaign back to the plan; it can be changed again. Scope: posts:write."""
    return _campaign_change(campaign_id, drafting.restore_campaign)


def _merged(body: BaseModel, current: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The current values, overridden by the fields the PATCH body sent."""
    # Only the fields that may be empty are nullable in the schema, so a None sent means "clear".
    sent = body.model_fields_set
    return {name: getattr(body if name in sent else current, name) for name in names}


# --- messages -------------------------------------------------------------------------------

_MESSAGE_FIELDS = ("title", "link_url", "resource_name", "intent", "context")


@bp.post("/campaigns/<int:campaign_id>/messages")
@spec.validate(
    json=MessageIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, MessageDetail, 404, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def create_message(campaign_id: int) -> Any:
    """Add a message (one link or resource, its intent and context). Scope: posts:write.

    The answer's warnings ask for at least two framings until the message has them.
    """
    body = _body(MessageIn)
    data = drafting.MessageInput(**body.model_dump())
    with _answering():
        created = drafting.create_message(
            get_session(), _org_id(), campaign_id, data, _actor(), now()
        )
    answer = _message(created)
    _commit()
    return answer, 201


@bp.get("/messages/<int:message_id>")
@spec.validate(resp=_responses(200, MessageDetail, 404), tags=["campaigns"], security=_BEARER)
@token_required("read")
def get_message(message_id: int) -> Any:
    """One message with its variants and warnings. Scope: read."""
    with _answering():
        found = drafting.get_message(get_session(), _org_id(), message_id)
    return _message(found)


@bp.patch("/messages/<int:message_id>")
@spec.validate(
    json=MessagePatch,
    resp=_responses(200, MessageDetail, 404, 422),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
def update_message(message_id: int) -> Any:
    """Change the fields sent (null clears link_url or resource_name). Scope: posts:write."""
    body = _body(MessagePatch)
    db = get_session()
    with _answering():
        current = drafting.get_message(db, _org_id(), message_id)
        data = drafting.MessageInput(**_merged(body, current, _MESSAGE_FIELDS))
        changed = drafting.update_message(db, _org_id(), message_id, data, _actor(), now())
    answer = _message(changed)
    _commit()
    return answer


@bp.delete("/messages/<int:message_id>")
@spec.validate(resp=_responses(204, None, 404, 422), tags=["campaigns"], security=_BEARER)
@token_required("posts:write")
def delete_message(message_id: int) -> Any:
    """Delete a message and its variants; 422 while a live post uses one. Scope: posts:write."""
    with _answering():
        drafting.delete_message(get_session(), _org_id(), message_id, _actor(), now())
    _commit()
    return "", 204


# --- variants -------------------------------------------------------------------------------


@bp.post("/messages/<int:message_id>/variants")
@spec.validate(
    json=VariantIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, VariantDetail, 404, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def create_variant(message_id: int) -> Any:
    """Add a framing of the message, tagged from the vocabulary. Scope: posts:write."""
    body = _body(VariantIn)
    data = drafting.VariantInput(
        label=body.label,
        text=body.text,
        audience=body.audience,
        framing_tags=tuple(body.framing_tags),
    )
    with _answering():
        created = drafting.create_variant(
            get_session(), _org_id(), message_id, data, _actor(), now()
        )
    answer = _variant(created)
    _commit()
    return answer, 201


@bp.get("/variants/<int:variant_id>")
@spec.validate(resp=_responses(200, VariantDetail, 404), tags=["campaigns"], security=_BEARER)
@token_required("read")
def get_variant(variant_id: int) -> Any:
    """One variant (framing). Scope: read."""
    with _answering():
        found = drafting.get_variant(get_session(), _org_id(), variant_id)
    return _variant(found)


@bp.patch("/variants/<int:variant_id>")
@spec.validate(
    json=VariantPatch,
    resp=_responses(200, VariantDetail, 404, 422),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("posts:write")
def update_variant(variant_id: int) -> Any:
    """Change the fields sent; framing_tags replaces the tags. Scope: posts:write."""
    body = _body(VariantPatch)
    sent = body.model_fields_set
    db = get_session()
    with _answering():
        current = drafting.get_variant(db, _org_id(), variant_id)
        data = drafting.VariantInput(
            label=body.label if "label" in sent else current.label,
            text=body.text if "text" in sent else current.text,
            audience=body.audience if "audience" in sent else current.audience,
            framing_tags=tuple(
                body.framing_tags
                if "framing_tags" in sent
                else [t.key for t in current.framing_tags]
            ),
        )
        changed = drafting.update_variant(db, _org_id(), variant_id, data, _actor(), now())
    answer = _variant(changed)
    _commit()
    return answer


@bp.delete("/variants/<int:variant_id>")
@spec.validate(resp=_responses(204, None, 404, 422), tags=["campaigns"], security=_BEARER)
@token_required("posts:write")
def delete_variant(variant_id: int) -> Any:
    """Delete a framing; 422 while a live post uses it. Scope: posts:write."""
    with _answering():
        drafting.delete_variant(get_session(), _org_id(), variant_id, _actor(), now())
    _commit()
    return "", 204


# --- the framing vocabulary -----------------------------------------------------------------


@bp.get("/framing-tags")
@spec.validate(
    query=FramingTagQuery,
    resp=_responses(200, FramingTagList, 422),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("read")
def list_framing_tags() -> Any:
    """The organisation's framing vocabulary, in order. Scope: read."""
    query = FramingTagQuery.model_validate(request.args.to_dict())
    found = drafting.framing_vocabulary(get_session(), _org_id(), query.include_archived)
    return {"items": [_tag(t) for t in found]}


@bp.post("/framing-tags")
@spec.validate(
    json=FramingTagIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, FramingTagOut, *_POSTED),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("admin")
@idempotent
def add_framing_tag() -> Any:
    """Add a framing dimension to the vocabulary. Scope: admin."""
    body = _body(FramingTagIn)
    with _answering():
        tag = drafting.add_framing_tag(
            get_session(), _org_id(), body.key, body.label, _actor(), now()
        )
    answer = _tag(tag)
    _commit()
    return answer, 201


@bp.patch("/framing-tags/<int:tag_id>")
@spec.validate(
    json=FramingTagPatch,
    resp=_responses(200, FramingTagOut, 404, 422),
    tags=["campaigns"],
    security=_BEARER,
)
@token_required("admin")
def update_framing_tag(tag_id: int) -> Any:
    """Relabel, archive or restore a framing tag; its key never changes. Scope: admin."""
    body = _body(FramingTagPatch)
    db = get_session()
    with _answering():
        current = next(
            (t for t in drafting.framing_vocabulary(db, _org_id(), True) if t.id == tag_id), None
        )
        if current is None:
            raise NotFound("no such framing tag")
        sent = body.model_fields_set
        tag = drafting.update_framing_tag(
            db,
            _org_id(),
            tag_id,
            body.label if "label" in sent else current.label,
            bool(body.archived) if "archived" in sent else current.archived,
            _actor(),
            now(),
        )
    answer = _tag(tag)
    _commit()
    return answer


# --- posts ----------------------------------------------------------------------------------


def _day_start(day: dt.date | None, zone: str) -> dt.datetime | None:
    """Midnight of a local date as UTC; None (no bound) at the calendar's edges."""
    if day is None:
        return None
    try:
        return resolve_local(day, dt.time(0, 0), zone).utc
    except (OverflowError, ValueError):
        return None


@bp.get("/posts")
@spec.validate(
    query=PostQuery,
    resp=_responses(200, PostList, 422),
    tags=["posts"],
    security=_BEARER,
)
@token_required("read")
def list_posts() -> Any:
    """Posts by time, with their deliveries, paged by offset. Scope: read.

    `from` and `to` are local dates in the organisation's timezone, both inclusive.
    """
    query = PostQuery.model_validate(request.args.to_dict())
    organisation = _organisation()
    zone = organisation.timezone
    end = None
    if query.to is not None and query.to < dt.date.max:
        end = _day_start(query.to + dt.timedelta(days=1), zone)
    found = posts.list_posts(
        get_session(),
        organisation.id,
        status=query.status,
        start=_day_start(query.from_, zone),
        end=end,
        limit=query.offset + query.limit + 1,
    )
    page = found[query.offset : query.offset + query.limit]
    more = len(found) > query.offset + query.limit
    return {
        "items": [_post(p, zone) for p in page],
        "next_offset": query.offset + query.limit if more else None,
    }


@bp.get("/posts/<int:post_id>")
@spec.validate(resp=_responses(200, PostDetail, 404), tags=["posts"], security=_BEARER)
@token_required("read")
def get_post(post_id: int) -> Any:
    """One post with its deliveries and its audit history (oldest first). Scope: read."""
    db, organisation = get_session(), _organisation()
    with _answering():
        found = posts.get_post(db, organisation.id, post_id)
    history = posts.history(db, organisation.id, post_id)
    return {**_post(found, organisation.timezone), "history": [_event(e) for e in history]}


@bp.post("/posts")
@spec.validate(
    json=PostIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, PostSaved, *_POSTED),
    tags=["posts"],
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def create_post() -> Any:
    """Write a post onto channels at a time or into the queue; optionally submit it.

    Scope: posts:write. A post that cannot be published (too long for a channel, an unknown or
    disabled channel, a time in the past or inside a blackout without an override) is refused
    with 422 and every reason in details.problems. With `submit`, a post for a channel that
    requires approval waits for a manager; a token with the `admin` scope acts as a manager, so
    its posts are approved at once.
    """
    body = _body(PostIn)
    data = posts.PostInput(
        text=body.text,
        channel_ids=tuple(body.channel_ids),
        when=body.when,
        use_queue=body.use_queue,
        link_url=body.link_url,
        variant_id=body.variant_id,
        blackout_override=body.blackout_override,
    )
    organisation = _organisation()
    with _answering(not_found=422, field="variant_id"):
        saved = posts.create_post(
            get_session(), organisation, data, _actor(), now(), submit=body.submit
        )
    answer = _saved(saved, organisation.timezone)
    _commit()
    return answer, 201


@bp.patch("/posts/<int:post_id>")
@spec.validate(
    json=PostPatch,
    resp=_responses(200, PostSaved, 404, 409, 422),
    tags=["posts"],
    security=_BEARER,
)
@token_required("posts:write")
def update_post(post_id: int) -> Any:
    """Change the fields sent. Scope: posts:write.

    Without `when` or `use_queue` the post keeps its time (every channel at the post's earliest
    time). Changing the text of an approved post that needs approval sends it back for approval
    unless the token has the `admin` scope. 409 while a delivery is being published; 422 once
    one has gone out.
    """
    body = _body(PostPatch)
    db, organisation = get_session(), _organisation()
    with _answering():
        current = posts.get_post(db, organisation.id, post_id)
    sent = body.model_fields_set
    if not sent:
        return {"post": _post(current, organisation.timezone), "warnings": [], "notes": []}
    use_queue = bool(body.use_queue) if "use_queue" in sent else False
    keep_time = current.scheduled_for.isoformat() if current.scheduled_for else None
    data = posts.PostInput(
        text=body.text if "text" in sent else current.text,
        channel_ids=tuple(
            body.channel_ids
            if "channel_ids" in sent
            else [d.channel_id for d in current.heads if d.status != "cancelled"]
        ),
        when=body.when if "when" in sent else keep_time,
        use_queue=use_queue,
        link_url=body.link_url if "link_url" in sent else current.link_url,
        variant_id=body.variant_id if "variant_id" in sent else current.variant_id,
        blackout_override=body.blackout_override
        if "blackout_override" in sent
        else current.blackout_override,
    )
    with _answering(not_found=422, field="variant_id"):
        saved = posts.update_post(db, organisation, post_id, data, _actor(), now())
    answer = _saved(saved, organisation.timezone)
    _commit()
    return answer


def _post_action(post_id: int, action: str, comment: str = "") -> Any:
    db, organisation, actor = get_session(), _organisation(), _actor()
    with _answering():
        if action == "submit":
            post = posts.submit_post(db, organisation, post_id, actor, now())
        elif action == "approve":
            post = posts.approve_post(db, organisation, post_id, actor, now(), comment)
        elif action == "reject":
            post = posts.reject_post(db, organisation, post_id, actor, now(), comment)
        else:
            post = posts.cancel_post(db, organisation, post_id, actor, now())
    answer = _post(post, organisation.timezone)
    _commit()
    return answer


_ACTION_RESPONSES = _responses(200, PostOut, 404, *_POSTED)


@bp.post("/posts/<int:post_id>/submit")
@spec.validate(headers=IdempotencyHeaders, resp=_ACTION_RESPONSES, tags=["posts"], security=_BEARER)
@token_required("posts:write")
@idempotent
def submit_post(post_id: int) -> Any:
    """Submit a draft (or a rejected post). Scope: posts:write.

    It is approved and scheduled at once unless a channel requires approval, when it waits for
    a manager; a token with the `admin` scope acts as a manager.
    """
    return _post_action(post_id, "submit")


@bp.post("/posts/<int:post_id>/approve")
@spec.validate(
    json=ReviewIn,
    headers=IdempotencyHeaders,
    resp=_ACTION_RESPONSES,
    tags=["posts"],
    security=_BEARER,
)
@token_required("admin")
@idempotent
def approve_post(post_id: int) -> Any:
    """Approve a post waiting for approval; it is scheduled. Scope: admin (acts as a manager)."""
    return _post_action(post_id, "approve", _body(ReviewIn).comment)


@bp.post("/posts/<int:post_id>/reject")
@spec.validate(
    json=RejectIn,
    headers=IdempotencyHeaders,
    resp=_ACTION_RESPONSES,
    tags=["posts"],
    security=_BEARER,
)
@token_required("admin")
@idempotent
def reject_post(post_id: int) -> Any:
    """Reject a post waiting for approval, saying why. Scope: admin (acts as a manager)."""
    return _post_action(post_id, "reject", _body(RejectIn).comment)


@bp.post("/posts/<int:post_id>/cancel")
@spec.validate(headers=IdempotencyHeaders, resp=_ACTION_RESPONSES, tags=["posts"], security=_BEARER)
@token_required("posts:write")
@idempotent
def cancel_post(post_id: int) -> Any:
    """Cancel every delivery not yet sent. Scope: posts:write; 409 while one is publishing."""
    return _post_action(post_id, "cancel")
