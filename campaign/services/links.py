"""First-party tracked links: codes for a delivery's URLs, the redirect target, clicks, pruning.

Plain values in and out, a `now` parameter, no Flask. The publishing engine calls
`ensure_links` for a batch of deliveries and publishes the returned text; the redirector
(campaign.web.links) calls `target_for`, then `record_click` or `record_bot_hit`; the worker
calls `prune`.

UTM parameters (per organisation, table `link_settings`; no row means the defaults):
utm_source = the network (a manual channel's name stands for its network), utm_medium = social,
utm_campaign = the campaign's slug, utm_content = the variant's slug. Each can be switched off
or given a fixed value. A utm_* already on the stored target wins (the team chose it by hand)
unless the organisation sets `override_existing`. Other query parameters and the fragment are
kept exactly as written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from sqlalchemy import (
    Date,
    Engine,
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table
from werkzeug.urls import iri_to_uri

from campaign.db import UTCDateTime, utcnow
from campaign.models.campaign import Campaign, Message, Variant
from campaign.models.channel import Channel
from campaign.models.engagement import (
    UTM_CAMPAIGN_MODES,
    UTM_CONTENT_MODES,
    UTM_MEDIUM_MODES,
    UTM_SOURCE_MODES,
    LinkBotHit,
    LinkClick,
    LinkSalt,
    LinkSettings,
    TrackedLink,
)
from campaign.models.post import Delivery, Post
from campaign.services import ServiceError
from campaign.services.click_privacy import utc_day
from campaign.services.link_bots import MAX_USER_AGENT

# Letters and digits only: URL-safe, and no "-" or "_" that text parsers might trim or split.
CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 9  # 62**9, about 1.3e16 codes: unguessable enough that a code is its own credential
CODE_PATTERN = re.compile(r"[A-Za-z0-9]{6,16}")
MAX_TARGET = 2000

# An http(s) URL runs to whitespace or a quote/angle bracket and must not follow a letter or a
# slash ("xhttps://"); the same rule as Bluesky's link facets (campaign.channels.bluesky), so
# what a network makes a link is what gets a code.
_URL = re.compile(r"(?<![\w/])https?://[^\s<>\"“”«»]+", re.IGNORECASE)
_TRAILING = ".,;:!?'’"
_PAIRS = {")": "(", "]": "[", "}": "{"}
_SLUG_LENGTH = 60


def _trim(url: str) -> str:
    # Sentence punctuation after a URL is not part of it, nor a closing bracket it did not open.
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _PAIRS and url.count(_PAIRS[last]) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url


def _matches(text: str) -> list[tuple[int, int, str]]:
    found = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        if url.partition("://")[2]:
            found.append((match.start(), match.start() + len(url), url))
    return found


def _ids_in(column: Any, dialect: str) -> Any:
    """`column` is one of the ids bound as `:ids` (one parameter, see publishing.ids_in)."""
    # Imported here: the publishing engine imports this module to call ensure_links.
    from campaign.services.publishing import ids_in

    return ids_in(column, dialect)


def _table(model: Any) -> Table:
    found: Table = model.__table__
    return found


def urls_in(text: str) -> list[str]:
    """The http(s) URLs in a post's text, in order, each once."""
    return list(dict.fromkeys(url for _, _, url in _matches(text)))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def looks_like_code(value: str) -> bool:
    """Whether `value` could be a code at all (anything else is a 404 without a query)."""
    return CODE_PATTERN.fullmatch(value) is not None


def _sha(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True)
class PublishedText:
    """A delivery's text as published: each tracked URL replaced by its short link."""

    text: str
    # The post's link_url as published (its short link when it has one), or None.
    link_url: str | None
    # Target URL -> code.
    codes: Mapping[str, str] = field(default_factory=dict)


def _short(base_url: str, code: str) -> str:
    return f"{base_url}/l/{code}"


def _rewrite(text: str, short_for: Mapping[str, str]) -> str:
    pieces: list[str] = []
    position = 0
    for start, end, url in _matches(text):
        replacement = short_for.get(url)
        if replacement is not None:
            pieces.append(text[position:start])
            pieces.append(replacement)
            position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _insert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert  # type: ignore[return-value]


def _codes_for(session: Session, delivery_ids: list[int]) -> dict[tuple[int, str], str]:
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        select(TrackedLink.delivery_id, TrackedLink.target_sha256, TrackedLink.code).where(
            _ids_in(TrackedLink.delivery_id, dialect)
        ),
        {"ids": delivery_ids},
    ).all()
    return {(delivery_id, sha): code for delivery_id, sha, code in rows}


def ensure_links(
    session: Session,
    delivery_ids: Iterable[int],
    base_url: str,
    now: dt.datetime | None = None,
) -> dict[int, PublishedText]:
    """Get or make the codes for each delivery's URLs; the text to publish, by delivery id.

    A few statements for any number of deliveries (read posts, read codes, one insert, read
    again). Idempotent and race-safe: the insert does nothing on a conflict and the codes are
    then read back, so two callers agree on one code per (delivery, URL). Runs in the caller's
    transaction; the caller commits. URLs already on this site's /l/ and URLs longer than
    2,000 characters are left as they are. Unknown delivery ids are left out of the result.
    """
    ids = sorted(set(delivery_ids))
    if not ids:
        return {}
    base = base_url.rstrip("/")
    own_prefix = f"{base}/l/"
    moment = now or utcnow()
    dialect = session.get_bind().dialect.name
    posts = session.execute(
        select(
            Delivery.id,
            Post.organisation_id,
            # A thread part publishes its own text; the post's link belongs to its first post.
            func.coalesce(Delivery.text, Post.text),
            case((Delivery.part == 0, Post.link_url), else_=None),
        )
        .join(Post, Post.id == Delivery.post_id)
        .where(_ids_in(Delivery.id, dialect)),
        {"ids": ids},
    ).all()

    wanted: dict[tuple[int, str], tuple[int, str]] = {}
    targets: dict[int, list[str]] = {}
    for delivery_id, organisation_id, text, link_url in posts:
        urls = urls_in(text)
        if link_url and link_url not in urls:
            urls.append(link_url)
        urls = [u for u in urls if not u.startswith(own_prefix) and len(u) <= MAX_TARGET]
        targets[delivery_id] = urls
        for url in urls:
            wanted[(delivery_id, _sha(url))] = (organisation_id, url)

    codes = _codes_for(session, ids) if wanted else {}
    for _ in range(3):  # a new code colliding with an existing one is retried with a fresh one
        # In key order, so that two callers' inserts cannot wait on each other (deadlock).
        missing = sorted(key for key in wanted if key not in codes)
        if not missing:
            break
        session.execute(
            _insert(session)(TrackedLink).on_conflict_do_nothing(),
            [
                {
                    "code": new_code(),
                    "delivery_id": delivery_id,
                    "organisation_id": wanted[(delivery_id, sha)][0],
                    "target_url": wanted[(delivery_id, sha)][1],
                    "target_sha256": sha,
                    "created_at": moment,
                }
                for delivery_id, sha in missing
            ],
        )
        codes = _codes_for(session, sorted({delivery_id for delivery_id, _ in missing})) | codes
    else:
        if any(key not in codes for key in wanted):
            raise RuntimeError("could not make unique link codes after three attempts")

    result: dict[int, PublishedText] = {}
    for delivery_id, _organisation_id, text, link_url in posts:
        by_url = {url: codes[(delivery_id, _sha(url))] for url in targets[delivery_id]}
        short_for = {url: _short(base, code) for url, code in by_url.items()}
        result[delivery_id] = PublishedText(
            text=_rewrite(text, short_for),
            link_url=short_for.get(link_url, link_url) if link_url else None,
            codes=by_url,
        )
    return result


# --- UTM parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UtmSettings:
    """An organisation's UTM choices (the defaults when it has no `link_settings` row)."""

    enabled: bool = True
    override_existing: bool = False
    source_mode: str = "network"
    source_value: str = ""
    medium_mode: str = "custom"
    medium_value: str = "social"
    campaign_mode: str = "campaign"
    campaign_value: str = ""
    content_mode: str = "variant"
    content_value: str = ""


_MODES = {
    "source_mode": UTM_SOURCE_MODES,
    "medium_mode": UTM_MEDIUM_MODES,
    "campaign_mode": UTM_CAMPAIGN_MODES,
    "content_mode": UTM_CONTENT_MODES,
}
_MAX_UTM_VALUE = 100


def utm_settings(session: Session, organisation_id: int) -> UtmSettings:
    """The organisation's UTM choices (the defaults when it has made none)."""
    return _settings_from(session.get(LinkSettings, organisation_id))


def save_utm_settings(
    session: Session, organisation_id: int, settings: UtmSettings, now: dt.datetime
) -> UtmSettings:
    """Check and store an organisation's UTM choices; flushes, the caller commits.

    Links already cached by a web process pick the change up within `[links] cache_seconds`.
    """
    for name, allowed in _MODES.items():
        value = getattr(settings, name)
        if value not in allowed:
            raise ServiceError(
                f"{name.replace('_', ' ')} must be one of {', '.join(allowed)}, not {value!r}."
            )
    for name in ("source_value", "medium_value", "campaign_value", "content_value"):
        value = getattr(settings, name)
        if len(value) > _MAX_UTM_VALUE:
            raise ServiceError(
                f"{name.replace('_', ' ')} is too long: at most {_MAX_UTM_VALUE} characters."
            )
        if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in value):
            raise ServiceError(
                f"{name.replace('_', ' ')} must not contain control characters or line breaks."
            )
        mode = getattr(settings, name.replace("_value", "_mode"))
        if mode == "custom" and not value.strip():
            raise ServiceError(f"{name.replace('_', ' ')} is empty but its mode is custom.")
    row = session.get(LinkSettings, organisation_id)
    if row is None:
        row = LinkSettings(organisation_id=organisation_id)
        session.add(row)
    row.utm_enabled = settings.enabled
    row.override_existing = settings.override_existing
    for name in (*_MODES, "source_value", "medium_value", "campaign_value", "content_value"):
        value = getattr(settings, name)
        setattr(row, name, value.strip() if name.endswith("_value") else value)
    row.updated_at = now
    session.flush()
    return _settings_from(row)


def slugify(value: str, fallback: str) -> str:
    """Lower-case ASCII words joined by hyphens ("Grad Fair 2027!" -> "grad-fair-2027")."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:_SLUG_LENGTH].strip("-") or fallback


def campaign_slug(campaign_id: int, name: str) -> str:
    return slugify(name, f"campaign-{campaign_id}")


def variant_slug(variant_id: int, label: str) -> str:
    """The label's slug and the id ("question-v12"): unique, so framings never pool."""
    return f"{slugify(label, 'variant')}-v{variant_id}"


def network_name(kind: str, channel_name: str) -> str:
    # A manual channel is named for its network ("LinkedIn", "Instagram"); the others are theirs.
    return slugify(channel_name, "manual") if kind == "manual" else kind


@dataclass(frozen=True)
class LinkContext:
    """What a link's UTM values are made from."""

    channel_kind: str
    channel_name: str
    campaign_id: int | None = None
    campaign_name: str | None = None
    variant_id: int | None = None
    variant_label: str | None = None


def utm_parameters(settings: UtmSettings, context: LinkContext) -> dict[str, str]:
    """The UTM parameters for a link, in order; a missing campaign or variant is left out."""
    if not settings.enabled:
        return {}
    params: dict[str, str] = {}
    if settings.source_mode == "network":
        params["utm_source"] = network_name(context.channel_kind, context.channel_name)
    elif settings.source_mode == "channel":
        params["utm_source"] = slugify(context.channel_name, context.channel_kind)
    elif settings.source_mode == "custom" and settings.source_value:
        params["utm_source"] = settings.source_value
    if settings.medium_mode == "custom" and settings.medium_value:
        params["utm_medium"] = settings.medium_value
    if settings.campaign_mode == "campaign" and context.campaign_id is not None:
        params["utm_campaign"] = campaign_slug(context.campaign_id, context.campaign_name or "")
    elif settings.campaign_mode == "custom" and settings.campaign_value:
        params["utm_campaign"] = settings.campaign_value
    if settings.content_mode == "variant" and context.variant_id is not None:
        params["utm_content"] = variant_slug(context.variant_id, context.variant_label or "")
    elif settings.content_mode == "custom" and settings.content_value:
        params["utm_content"] = settings.content_value
    return params


def add_query(url: str, params: Mapping[str, str], override_existing: bool = False) -> str:
    """`url` with `params` appended to its query; existing parameters stay as written.

    A parameter the URL already has (compared case-insensitively) keeps its value unless
    `override_existing`, when ours replaces it. The fragment stays at the end.
    """
    if not params:
        return url
    parts = urlsplit(url)
    pieces = [piece for piece in parts.query.split("&") if piece]

    def key(piece: str) -> str:
        return unquote_plus(piece.partition("=")[0]).lower()

    wanted = {name.lower(): (name, value) for name, value in params.items()}
    if override_existing:
        pieces = [piece for piece in pieces if key(piece) not in wanted]
    else:
        present = {key(piece) for piece in pieces}
        wanted = {k: v for k, v in wanted.items() if k not in present}
    pieces += [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in wanted.values()]
    return urlunsplit(parts._replace(query="&".join(pieces)))


@dataclass(frozen=True)
class LinkTarget:
    link_id: int
    # An ASCII URI, safe for a Location header.
    location: str


def _settings_from(row: LinkSettings | None) -> UtmSettings:
    if row is None:
        return UtmSettings()
    return UtmSettings(
        enabled=row.utm_enabled,
        override_existing=row.override_existing,
        source_mode=row.source_mode,
        source_value=row.source_value,
        medium_mode=row.medium_mode,
        medium_value=row.medium_value,
        campaign_mode=row.campaign_mode,
        campaign_value=row.campaign_value,
        content_mode=row.content_mode,
        content_value=row.content_value,
    )


_TARGET_QUERY = (
    select(
        TrackedLink.id,
        TrackedLink.target_url,
        Channel.kind,
        Channel.display_name,
        Campaign.id,
        Campaign.name,
        Variant.id,
        Variant.label,
        LinkSettings,
    )
    .select_from(TrackedLink)
    .join(Delivery, Delivery.id == TrackedLink.delivery_id)
    .join(Channel, Channel.id == Delivery.channel_id)
    .join(Post, Post.id == Delivery.post_id)
    .outerjoin(Variant, Variant.id == Post.variant_id)
    .outerjoin(Message, Message.id == Variant.message_id)
    .outerjoin(Campaign, Campaign.id == Message.campaign_id)
    .outerjoin(LinkSettings, LinkSettings.organisation_id == TrackedLink.organisation_id)
    .where(TrackedLink.code == bindparam("code"))
)


def target_for(session: Session, code: str, now: dt.datetime) -> LinkTarget | None:
    """Where a code sends its visitor (UTM parameters added), or None for an unknown code.

    The target only ever comes from the stored link, never from the request. `now` is the
    time of the lookup (kept for symmetry with the other calls and for caches).
    """
    del now
    if not looks_like_code(code):
        return None
    row = session.execute(_TARGET_QUERY, {"code": code}).first()
    if row is None:
        return None
    link_id, target, kind, channel_name, campaign_id, campaign_name, variant_id, label, stored = row
    context = LinkContext(
        channel_kind=kind,
        channel_name=channel_name,
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        variant_id=variant_id,
        variant_label=label,
    )
    settings = _settings_from(stored)
    location = add_query(target, utm_parameters(settings, context), settings.override_existing)
    return LinkTarget(link_id=link_id, location=iri_to_uri(location))


# --- clicks and bot hits ----------------------------------------------------------------------

_CLICKS = _table(LinkClick)


def _first_click_insert() -> Any:
    earlier = (
        select(_CLICKS.c.id)
        .where(
            _CLICKS.c.link_id == bindparam("link_id", type_=Integer),
            _CLICKS.c.day == bindparam("day", type_=Date),
            _CLICKS.c.visitor_hash == bindparam("visitor_hash", type_=String),
            _CLICKS.c.is_first_today.is_(True),
        )
        .exists()
    )
    values = select(
        bindparam("link_id", type_=Integer),
        bindparam("clicked_at", type_=UTCDateTime()),
        bindparam("day", type_=Date),
        bindparam("visitor_hash", type_=String),
        ~earlier,
    )
    columns = ["link_id", "clicked_at", "day", "visitor_hash", "is_first_today"]
    return insert(_CLICKS).from_select(columns, values).returning(_CLICKS.c.is_first_today)


# One INSERT ... SELECT: the click and whether it is the visitor's first on the link today.
_FIRST_CLICK = _first_click_insert()


def _write(
    bind: Session | Engine, statement: Any, params: dict[str, Any], returning: bool = False
) -> Any:
    """Run one statement in its own committed transaction; its first value when `returning`.

    An Engine skips the ORM session's bookkeeping, which costs as much as SQLite's own work on
    this path; a Session (tests, or a caller already holding one) is committed.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            done = conn.execute(statement, params)
            return done.scalar() if returning else None
    try:
        result = bind.execute(statement, params)
        value = result.scalar() if returning else None
        bind.commit()
        return value
    except BaseException:
        bind.rollback()
        raise


_REPEAT_CLICK = insert(_CLICKS)


def record_click(
    bind: Session | Engine, link_id: int, now: dt.datetime, visitor_hash: str | None
) -> bool:
    """Store one click in its own short transaction (committed); whether it is a unique one.

    On PostgreSQL two first clicks of one visitor can race; the partial unique index lets only
    one be first and the other is stored as a repeat.
    """
    params: dict[str, Any] = {
        "link_id": link_id,
        "clicked_at": now,
        "day": utc_day(now),
        "visitor_hash": visitor_hash,
    }
    try:
        return bool(_write(bind, _FIRST_CLICK, params, returning=True))
    except IntegrityError:
        pass  # a concurrent first click of this visitor won the index: this one is a repeat
    _write(bind, _REPEAT_CLICK, {**params, "is_first_today": False})
    return False


_BOT_HIT = insert(_table(LinkBotHit))


def record_bot_hit(
    bind: Session | Engine, link_id: int, now: dt.datetime, bot: str, user_agent: str | None
) -> None:
    """Store one bot hit (never a click) in its own short transaction (committed)."""
    params = {
        "link_id": link_id,
        "at": now,
        "bot": bot[:40],
        "user_agent": (user_agent or "")[:MAX_USER_AGENT],
    }
    _write(bind, _BOT_HIT, params)


# --- reading and pruning ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClickCounts:
    clicks: int = 0
    # Different visitors per link per UTC day, summed over days and links.
    unique: int = 0
    bot_hits: int = 0


def click_counts(session: Session, delivery_ids: Iterable[int]) -> dict[int, ClickCounts]:
    """Clicks, unique clicks and bot hits for each delivery (deliveries without links: zeros)."""
    ids = sorted(set(delivery_ids))
    dialect = session.get_bind().dialect.name
    clicks = session.execute(
        select(
            TrackedLink.delivery_id,
            func.count(LinkClick.id),
            func.count(LinkClick.id).filter(LinkClick.is_first_today.is_(True)),
        )
        .join(LinkClick, LinkClick.link_id == TrackedLink.id)
        .where(_ids_in(TrackedLink.delivery_id, dialect))
        .group_by(TrackedLink.delivery_id),
        {"ids": ids},
    ).all()
    bots = dict(
        session.execute(
            select(TrackedLink.delivery_id, func.count(LinkBotHit.id))
            .join(LinkBotHit, LinkBotHit.link_id == TrackedLink.id)
            .where(_ids_in(TrackedLink.delivery_id, dialect))
            .group_by(TrackedLink.delivery_id),
            {"ids": ids},
        ).all()
    )
    totals = {delivery_id: (total, unique) for delivery_id, total, unique in clicks}
    return {
        delivery_id: ClickCounts(*totals.get(delivery_id, (0, 0)), bots.get(delivery_id, 0))
        for delivery_id in ids
    }


def clicks_by_day(session: Session, delivery_id: int) -> list[tuple[dt.date, int, int]]:
    """(UTC day, clicks, unique clicks) for one delivery's links, oldest first."""
    rows = session.execute(
        select(
            LinkClick.day,
            func.count(LinkClick.id),
            func.count(LinkClick.id).filter(LinkClick.is_first_today.is_(True)),
        )
        .join(TrackedLink, TrackedLink.id == LinkClick.link_id)
        .where(TrackedLink.delivery_id == delivery_id)
        .group_by(LinkClick.day)
        .order_by(LinkClick.day)
    ).all()
    return [(day, total, unique) for day, total, unique in rows]


def clicks_by_hour(session: Session, delivery_id: int) -> list[tuple[dt.datetime, int, int]]:
    """(start of the UTC hour, clicks, first clicks of a visitor that day), oldest first."""
    column = LinkClick.clicked_at
    if session.get_bind().dialect.name == "postgresql":
        hour: Any = func.date_trunc("hour", func.timezone("UTC", column))
    else:
        hour = func.strftime("%Y-%m-%d %H:00:00", column)
    rows = session.execute(
        select(
            hour.label("hour"),
            func.count(LinkClick.id),
            func.count(LinkClick.id).filter(LinkClick.is_first_today.is_(True)),
        )
        .join(TrackedLink, TrackedLink.id == LinkClick.link_id)
        .where(TrackedLink.delivery_id == delivery_id)
        .group_by(hour)
        .order_by(hour)
    ).all()
    result = []
    for start, total, unique in rows:
        moment = start if isinstance(start, dt.datetime) else dt.datetime.fromisoformat(start)
        result.append((moment.replace(tzinfo=dt.UTC), total, unique))
    return result


@dataclass(frozen=True)
class Pruned:
    clicks: int
    bot_hits: int
    salts: int
    hashes_cleared: int


def prune(
    session: Session, now: dt.datetime, click_retention_days: int, bot_hit_retention_days: int
) -> Pruned:
    """Delete clicks and bot hits past retention, and salts (and hashes) older than yesterday.

    Today's and yesterday's salts are kept (a click just after midnight may still be counted
    against yesterday by a process with a slower clock); older ones are deleted, and the visitor
    hashes of those days cleared, since unique counting for them is closed. Runs in the
    caller's transaction; the caller commits.
    """
    if click_retention_days < 1 or bot_hit_retention_days < 1:
        raise ValueError("retention must be at least one day")
    today = utc_day(now)
    closed = today - dt.timedelta(days=1)
    clicks = session.execute(
        delete(LinkClick).where(LinkClick.day < today - dt.timedelta(days=click_retention_days))
    )
    bot_hits = session.execute(
        delete(LinkBotHit).where(LinkBotHit.at < now - dt.timedelta(days=bot_hit_retention_days))
    )
    salts = session.execute(delete(LinkSalt).where(LinkSalt.day < closed))
    hashes = session.execute(
        update(LinkClick)
        .where(LinkClick.day < closed, LinkClick.visitor_hash.is_not(None))
        .values(visitor_hash=None)
    )
    return Pruned(
        clicks=clicks.rowcount,  # type: ignore[attr-defined]
        bot_hits=bot_hits.rowcount,  # type: ignore[attr-defined]
        salts=salts.rowcount,  # type: ignore[attr-defined]
        hashes_cleared=hashes.rowcount,  # type: ignore[attr-defined]
    )
