"""Drafting: campaigns, their messages, each message's variants (framings), and the vocabulary.

Every function takes the acting organisation's id and refuses another organisation's ids with
NotFound, checks the actor's role (staff and above for the content, admin for the vocabulary),
refuses bad input with a FieldError naming the field, flushes and writes the audit trail; the
caller commits. An archived campaign is read-only, and so are its messages and variants.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from campaign.models import (
    AUDIENCES,
    Campaign,
    FramingTag,
    Membership,
    Message,
    Post,
    Role,
    User,
    Variant,
)
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor, record
from campaign.services.text_rules import normalised

# The column lengths of campaign.models.
MAX_NAME = 200
MAX_TITLE = 200
MAX_RESOURCE_NAME = 200
MAX_INTENT = 500
MAX_LINK = 2000
MAX_VARIANT_LABEL = 120
MAX_TAG_LABEL = 80
# Free-text columns have no length in the database; this keeps a pasted book out of them.
MAX_LONG_TEXT = 20_000
TAG_KEY = re.compile(r"[a-z][a-z0-9_]{1,39}")
FEWER_THAN_TWO = "add at least two framings to compare them"


class FieldError(ServiceError):
    """Bad input for one field; the message names the field in words, `field` in code."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CampaignInput:
    name: str
    description: str = ""
    goal: str = ""
    audience: str | None = None  # one of AUDIENCES, or None for everyone
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    owner_id: int | None = None  # a member of the organisation


@dataclass(frozen=True)
class MessageInput:
    title: str
    link_url: str | None = None
    resource_name: str | None = None
    intent: str = ""
    context: str = ""  # why it matters now


@dataclass(frozen=True)
class VariantInput:
    label: str
    text: str
    audience: str
    # Keys from the organisation's vocabulary; kept once each, in the vocabulary's order.
    framing_tags: tuple[str, ...] = ()


# --- campaigns ------------------------------------------------------------------------------


def create_campaign(
    session: Session, organisation_id: int, data: CampaignInput, actor: Actor, now: dt.datetime
) -> Campaign:
    _require(actor, organisation_id, Role.STAFF, "create campaigns")
    values = _campaign_values(session, organisation_id, data)
    campaign = Campaign(
        organisation_id=organisation_id, created_by_id=actor.user_id, created_at=now, **values
    )
    session.add(campaign)
    session.flush()
    _audit(
        session, actor, "campaign.created", campaign.id, organisation_id, now, **_jsonable(values)
    )
    return campaign


def update_campaign(
    session: Session,
    organisation_id: int,
    campaign_id: int,
    data: CampaignInput,
    actor: Actor,
    now: dt.datetime,
) -> Campaign:
    _require(actor, organisation_id, Role.STAFF, "edit campaigns")
    campaign = _campaign(session, organisation_id, campaign_id)
    _writable(campaign, "changed")
    values = _campaign_values(session, organisation_id, data, kept_owner=campaign.owner_id)
    changes = _apply(campaign, values)
    session.flush()
    if changes:
        _audit(
            session, actor, "campaign.edited", campaign.id, organisation_id, now, changes=changes
        )
    return campaign


def archive_campaign(
    session: Session, organisation_id: int, campaign_id: int, actor: Actor, now: dt.datetime
) -> Campaign:
    """Hide the campaign from planning and freeze it; its posts are left as they are."""
    return _set_archived(session, organisation_id, campaign_id, True, actor, now)


def restore_campaign(
    session: Session, organisation_id: int, campaign_id: int, actor: Actor, now: dt.datetime
) -> Campaign:
    """Bring an archived campaign back to planning; it can be changed again."""
    return _set_archived(session, organisation_id, campaign_id, False, actor, now)


def _set_archived(
    session: Session,
    organisation_id: int,
    campaign_id: int,
    archived: bool,
    actor: Actor,
    now: dt.datetime,
) -> Campaign:
    doing = "archive" if archived else "restore"
    _require(actor, organisation_id, Role.STAFF, f"{doing} campaigns")
    campaign = _campaign(session, organisation_id, campaign_id)
    if campaign.archived == archived:
        state = "already archived" if archived else "not archived"
        raise ServiceError(f"The campaign {campaign.name!r} is {state}.")
    campaign.archived = archived
    session.flush()
    action = "campaign.archived" if archived else "campaign.restored"
    _audit(session, actor, action, campaign.id, organisation_id, now)
    return campaign


def _campaign_values(
    session: Session, organisation_id: int, data: CampaignInput, kept_owner: int | None = None
) -> dict[str, object]:
    """The checked values; an owner who has left since is kept until the owner is changed."""
    name = _line("name", "The name", data.name, MAX_NAME, required=True)
    description = _long("description", "The description", data.description)
    goal = _long("goal", "The goal", data.goal)
    audience = _audience(data.audience, optional=True)
    if data.starts_on and data.ends_on and data.ends_on < data.starts_on:
        raise FieldError(
            "ends_on",
            f"The end date ({data.ends_on.isoformat()}) is before the start date "
            f"({data.starts_on.isoformat()}).",
        )
    if data.owner_id is not None and data.owner_id != kept_owner:
        _member(session, organisation_id, data.owner_id)
    return {
        "name": name,
        "description": description,
        "goal": goal,
        "audience": audience,
        "starts_on": data.starts_on,
        "ends_on": data.ends_on,
        "owner_id": data.owner_id,
    }


def _member(session: Session, organisation_id: int, user_id: int) -> None:
    found = session.scalar(
        select(User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(
            User.id == user_id,
            User.is_active.is_(True),
            Membership.organisation_id == organisation_id,
        )
    )
    if found is None:
        raise FieldError(
            "owner_id",
            f"The owner (user {user_id}) is not a member of this "
            "organisation; choose one of its members.",
        )


# --- messages -------------------------------------------------------------------------------


def create_message(
    session: Session,
    organisation_id: int,
    campaign_id: int,
    data: MessageInput,
    actor: Actor,
    now: dt.datetime,
) -> Message:
    _require(actor, organisation_id, Role.STAFF, "write messages")
    campaign = _campaign(session, organisation_id, campaign_id)
    _writable(campaign, "given new messages")
    values = _message_values(data)
    message = Message(campaign=campaign, created_at=now, **values)
    session.add(message)
    session.flush()
    _audit(
        session,
        actor,
        "message.created",
        message.id,
        organisation_id,
        now,
        campaign_id=campaign.id,
        **values,
    )
    return message


def update_message(
    session: Session,
    organisation_id: int,
    message_id: int,
    data: MessageInput,
    actor: Actor,
    now: dt.datetime,
) -> Message:
    _require(actor, organisation_id, Role.STAFF, "edit messages")
    message = get_message(session, organisation_id, message_id)
    _writable(message.campaign, "changed")
    changes = _apply(message, _message_values(data))
    session.flush()
    if changes:
        _audit(session, actor, "message.edited", message.id, organisation_id, now, changes=changes)
    return message


def delete_message(
    session: Session, organisation_id: int, message_id: int, actor: Actor, now: dt.datetime
) -> None:
    """Delete a message and its variants; refused while a post made from one is still live."""
    _require(actor, organisation_id, Role.STAFF, "delete messages")
    message = get_message(session, organisation_id, message_id)
    _writable(message.campaign, "changed")
    _not_in_use(session, [v.id for v in message.variants], f"The message {message.title!r}")
    _audit(
        session,
        actor,
        "message.deleted",
        message.id,
        organisation_id,
        now,
        title=message.title,
        campaign_id=message.campaign_id,
        variants=[v.label for v in message.variants],
    )
    message.campaign.messages.remove(message)  # delete-orphan: its variants go with it
    session.flush()


def get_message(session: Session, organisation_id: int, message_id: int) -> Message:
    """One message of this organisation, with its campaign, variants and their tags."""
    found = session.scalar(
        select(Message)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.id == message_id, Campaign.organisation_id == organisation_id)
        .options(
            selectinload(Message.campaign),
            selectinload(Message.variants).selectinload(Variant.framing_tags),
        )
    )
    if found is None:
        raise NotFound("no such message")
    return found


def message_warnings(message: Message) -> list[str]:
    """What to tell the author about the message (shown, never refused)."""
    count = len(message.variants)
    if count >= 2:
        return []
    so_far = "No framings yet" if count == 0 else "Only one framing so far"
    return [f"{so_far}: {FEWER_THAN_TWO}."]


def _message_values(data: MessageInput) -> dict[str, object]:
    return {
        "title": _line("title", "The title", data.title, MAX_TITLE, required=True),
        "link_url": _link(data.link_url),
        "resource_name": _line(
            "resource_name", "The resource name", data.resource_name or "", MAX_RESOURCE_NAME
        )
        or None,
        "intent": _line("intent", "The intent", data.intent, MAX_INTENT),
        "context": _long("context", "The context", data.context),
    }


def _link(url: str | None) -> str | None:
    cleaned = (url or "").strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_LINK:
        raise FieldError("link_url", f"The link is too long: at most {MAX_LINK:,} characters.")
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs") for ch in cleaned):
        raise FieldError("link_url", "The link must not contain spaces or control characters.")
    try:
        parts = urlsplit(cleaned)
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError:  # e.g. a malformed [IPv6] host
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise FieldError("link_url", "The link must be a web address starting with https://.")
    return cleaned


# --- variants -------------------------------------------------------------------------------


def create_variant(
    session: Session,
    organisation_id: int,
    message_id: int,
    data: VariantInput,
    actor: Actor,
    now: dt.datetime,
) -> Variant:
    _require(actor, organisation_id, Role.STAFF, "write framings")
    message = get_message(session, organisation_id, message_id)
    _writable(message.campaign, "given new framings")
    label, text, audience = _variant_values(data)
    tags = _tags(session, organisation_id, data.framing_tags, already=())
    variant = Variant(
        message=message,
        label=label,
        text=text,
        audience=audience,
        framing_tags=tags,
        created_at=now,
    )
    session.add(variant)
    session.flush()
    _audit(
        session,
        actor,
        "variant.created",
        variant.id,
        organisation_id,
        now,
        message_id=message.id,
        label=label,
        text=text,
        audience=audience,
        framing_tags=[t.key for t in tags],
    )
    return variant


def update_variant(
    session: Session,
    organisation_id: int,
    variant_id: int,
    data: VariantInput,
    actor: Actor,
    now: dt.datetime,
) -> Variant:
    """Change a framing; tags it already carries may stay even if archived since."""
    _require(actor, organisation_id, Role.STAFF, "edit framings")
    variant = get_variant(session, organisation_id, variant_id)
    _writable(variant.message.campaign, "changed")
    label, text, audience = _variant_values(data)
    tags = _tags(session, organisation_id, data.framing_tags, already=variant.framing_tags)
    before = [t.key for t in _in_order(variant.framing_tags)]
    changes = _apply(variant, {"label": label, "text": text, "audience": audience})
    if [t.key for t in tags] != before:
        variant.framing_tags = tags
        changes["framing_tags"] = {"from": before, "to": [t.key for t in tags]}
    session.flush()
    if changes:
        _audit(session, actor, "variant.edited", variant.id, organisation_id, now, changes=changes)
    return variant


def delete_variant(
    session: Session, organisation_id: int, variant_id: int, actor: Actor, now: dt.datetime
) -> None:
    """Delete a framing; refused while a post made from it is still live."""
    _require(actor, organisation_id, Role.STAFF, "delete framings")
    variant = get_variant(session, organisation_id, variant_id)
    _writable(variant.message.campaign, "changed")
    _not_in_use(session, [variant.id], f"The framing {variant.label!r}")
    _audit(
        session,
        actor,
        "variant.deleted",
        variant.id,
        organisation_id,
        now,
        message_id=variant.message_id,
        label=variant.label,
    )
    variant.message.variants.remove(variant)  # delete-orphan
    session.flush()


def get_variant(session: Session, organisation_id: int, variant_id: int) -> Variant:
    """One variant of this organisation, with its tags, message and campaign."""
    found = session.scalar(
        select(Variant)
        .join(Message, Message.id == Variant.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Variant.id == variant_id, Campaign.organisation_id == organisation_id)
        .options(
            selectinload(Variant.framing_tags),
            selectinload(Variant.message).selectinload(Message.campaign),
        )
    )
    if found is None:
        raise NotFound("no such variant")
    return found


def _variant_values(data: VariantInput) -> tuple[str, str, str]:
    label = _line("label", "The label", data.label, MAX_VARIANT_LABEL, required=True)
    text = normalised(data.text or "").strip()
    if not text:
        raise FieldError("text", "The text is empty; write the post as this framing says it.")
    _plain("text", "The text", text, multiline=True)
    if len(text) > MAX_LONG_TEXT:
        raise FieldError("text", f"The text is too long: at most {MAX_LONG_TEXT:,} characters.")
    audience = _audience(data.audience, optional=False)
    assert audience is not None  # refused above when missing
    return label, text, audience


def _tags(
    session: Session, organisation_id: int, keys: Sequence[str], already: Sequence[FramingTag]
) -> list[FramingTag]:
    wanted = list(dict.fromkeys(k.strip() for k in keys if k.strip()))
    if not wanted:
        return []
    found = {
        t.key: t
        for t in session.scalars(
            select(FramingTag).where(
                FramingTag.organisation_id == organisation_id, FramingTag.key.in_(wanted)
            )
        )
    }
    unknown = [k for k in wanted if k not in found]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise FieldError(
            "framing_tags",
            f"Unknown framing tag {names}: use a key from the organisation's vocabulary.",
        )
    kept = {t.id for t in already}
    archived = [k for k in wanted if found[k].archived and found[k].id not in kept]
    if archived:
        names = ", ".join(repr(k) for k in archived)
        raise FieldError("framing_tags", f"The framing tag {names} is archived; choose another.")
    return _in_order(found[k] for k in wanted)


def _in_order(tags: Iterable[FramingTag]) -> list[FramingTag]:
    """Tags in vocabulary order (the link table keeps no order of its own)."""
    return sorted(tags, key=lambda t: (t.position, t.id))


def _not_in_use(session: Session, variant_ids: list[int], what: str) -> None:
    if not variant_ids:
        return
    live = session.scalar(
        select(func.count(Post.id)).where(
            Post.variant_id.in_(variant_ids), Post.status != "cancelled"
        )
    )
    if live:
        raise ServiceError(
            f"{what} is used by {live} post{'s' if live != 1 else ''} that "
            f"{'are' if live != 1 else 'is'} not cancelled; it is kept so their results stay "
            "comparable. Cancel those posts first, or archive the campaign."
        )


# --- the framing vocabulary -----------------------------------------------------------------


def framing_vocabulary(
    session: Session, organisation_id: int, include_archived: bool = False
) -> list[FramingTag]:
    query = select(FramingTag).where(FramingTag.organisation_id == organisation_id)
    if not include_archived:
        query = query.where(FramingTag.archived.is_(False))
    return list(session.scalars(query.order_by(FramingTag.position, FramingTag.id)))


def add_framing_tag(
    session: Session, organisation_id: int, key: str, label: str, actor: Actor, now: dt.datetime
) -> FramingTag:
    _require(actor, organisation_id, Role.ADMIN, "change the framing vocabulary")
    key = (key or "").strip()
    if not TAG_KEY.fullmatch(key):
        raise FieldError(
            "key",
            f"The key {key!r} must be 2 to 40 lowercase letters, digits or "
            "underscores, starting with a letter (like deadline_urgency).",
        )
    label = _line("label", "The label", label, MAX_TAG_LABEL, required=True)
    exists = session.scalar(
        select(FramingTag.id).where(
            FramingTag.organisation_id == organisation_id, FramingTag.key == key
        )
    )
    if exists is not None:
        raise FieldError(
            "key",
            f"The vocabulary already has the key {key!r}; archived keys "
            "can be restored by editing them.",
        )
    last = session.scalar(
        select(func.max(FramingTag.position)).where(FramingTag.organisation_id == organisation_id)
    )
    tag = FramingTag(
        organisation_id=organisation_id, key=key, label=label, position=(last or 0) + 1
    )
    session.add(tag)
    session.flush()
    _audit(
        session, actor, "framing_tag.created", tag.id, organisation_id, now, key=key, label=label
    )
    return tag


def update_framing_tag(
    session: Session,
    organisation_id: int,
    tag_id: int,
    label: str,
    archived: bool,
    actor: Actor,
    now: dt.datetime,
) -> FramingTag:
    """Relabel, archive or restore a tag; its key never changes, so tagged variants keep it."""
    _require(actor, organisation_id, Role.ADMIN, "change the framing vocabulary")
    tag = session.scalar(
        select(FramingTag).where(
            FramingTag.id == tag_id, FramingTag.organisation_id == organisation_id
        )
    )
    if tag is None:
        raise NotFound("no such framing tag")
    label = _line("label", "The label", label, MAX_TAG_LABEL, required=True)
    changes = _apply(tag, {"label": label, "archived": bool(archived)})
    session.flush()
    if changes:
        _audit(
            session,
            actor,
            "framing_tag.edited",
            tag.id,
            organisation_id,
            now,
            key=tag.key,
            changes=changes,
        )
    return tag


# --- helpers --------------------------------------------------------------------------------


def _require(actor: Actor, organisation_id: int, role: Role, doing: str) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(role)
    except ValueError:
        allowed = False
    if not allowed or actor.organisation_id != organisation_id:
        raise PermissionDenied(f"Only a {role.value} or above can {doing}.")


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    subject_id: int,
    organisation_id: int,
    now: dt.datetime,
    **detail: object,
) -> None:
    """One audit event; the subject type is the action's first word ("variant.edited")."""
    subject_type = action.split(".", 1)[0]
    record(session, actor, action, subject_type, subject_id, now, organisation_id, **detail)


def _campaign(session: Session, organisation_id: int, campaign_id: int) -> Campaign:
    found = session.scalar(
        select(Campaign).where(
            Campaign.id == campaign_id, Campaign.organisation_id == organisation_id
        )
    )
    if found is None:
        raise NotFound("no such campaign")
    return found


def _writable(campaign: Campaign, doing: str) -> None:
    if campaign.archived:
        raise ServiceError(
            f"The campaign {campaign.name!r} is archived, so it and its messages and framings "
            f"cannot be {doing}."
        )


def _plain(field: str, what: str, value: str, multiline: bool) -> None:
    allowed = "\n\t" if multiline else ""
    for position, ch in enumerate(value, 1):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in allowed) or category == "Cs":
            kind = "a line break" if ch in "\r\n" else f"an invisible character (U+{ord(ch):04X})"
            raise FieldError(field, f"{what} contains {kind} at position {position}.")


def _line(field: str, what: str, value: str, limit: int, required: bool = False) -> str:
    cleaned = normalised(value or "").strip()
    if required and not cleaned:
        raise FieldError(field, f"{what} is required.")
    _plain(field, what, cleaned, multiline=False)
    if len(cleaned) > limit:
        raise FieldError(
            field, f"{what} is too long: {len(cleaned):,} characters, at most {limit:,}."
        )
    return cleaned


def _long(field: str, what: str, value: str) -> str:
    cleaned = normalised(value or "").strip()
    _plain(field, what, cleaned, multiline=True)
    if len(cleaned) > MAX_LONG_TEXT:
        raise FieldError(
            field, f"{what} is too long: {len(cleaned):,} characters, at most {MAX_LONG_TEXT:,}."
        )
    return cleaned


def _audience(value: str | None, optional: bool) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned and optional:
        return None
    if cleaned not in AUDIENCES:
        everyone = ", or none for everyone" if optional else ""
        raise FieldError(
            "audience", f"The audience must be one of {', '.join(AUDIENCES)}{everyone}."
        )
    return cleaned


def _apply(target: object, values: dict[str, object]) -> dict[str, dict[str, object]]:
    """Set the attributes; what changed, as JSON-ready {"field": {"from": .., "to": ..}}."""
    changes: dict[str, dict[str, object]] = {}
    for name, value in values.items():
        before = getattr(target, name)
        if before != value:
            changes[name] = {"from": _json(before), "to": _json(value)}
            setattr(target, name, value)
    return changes


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def _jsonable(values: dict[str, object]) -> dict[str, object]:
    return {name: _json(value) for name, value in values.items()}
