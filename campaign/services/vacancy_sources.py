"""Vacancy sources: managing them (managers and admins), polling feeds, CSV uploads, pushes.

Polling a source fetches outside any transaction (through the guarded fetcher, with the stored
ETag / Last-Modified), parses (only the changed items of an RSS/Atom feed whose body changed),
normalises in the organisation's timezone and ingests in one short transaction, recording the
source's status, error, counts and warnings. A failing source never stops the others, and is
polled less often while it keeps failing (`retry_delay`: its interval doubled per failure, up to a
day, and never sooner than the server's Retry-After).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from campaign.config import Settings
from campaign.models import ApiToken, Organisation, Role, VacancySource
from campaign.netguard import AllowList, parse_allow_list
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services import vacancies as records
from campaign.services.audit import Actor, record
from campaign.vacancies import dates, dedupe, detect, examples, fetch, incremental
from campaign.vacancies.csvfile import parse_csv
from campaign.vacancies.normalise import Memo, normalise
from campaign.vacancies.records import ParseResult, RawItem, Vacancy

log = logging.getLogger(__name__)

EDITABLE_KINDS = ("feed", "csv")  # push sources are made by an API token's first push
MIN_INTERVAL, MAX_INTERVAL = 5, 10080  # minutes: five minutes to a week
MAX_WITHDRAW_AFTER = 100
MAX_NAME = 200
MAX_URL = 2000
MAX_WARNINGS = 50
# A failing feed is polled less often, up to once a day (see `retry_delay`).
MAX_BACKOFF = dt.timedelta(hours=24)

Fetcher = Callable[..., fetch.FetchResult]


class FieldError(ServiceError):
    """Bad input for one field of a source; the message names the field in words."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SourceInput:
    name: str
    kind: str = "feed"
    url: str = ""
    poll_interval_minutes: int = 60
    withdraw_after_polls: int = 3
    enabled: bool = True


@dataclass
class PollOutcome:
    """What one poll (or upload) of a source did."""

    source_id: int
    name: str
    status: str  # ok, not_modified, error, skipped
    items: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    item_errors: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        """One line for the CLI and logs."""
        head = f"source {self.source_id} ({self.name}): {self.status}"
        if self.status == "error":
            return f"{head}: {self.error}"
        if self.status in ("not_modified", "skipped"):
            return head + (f": {self.error}" if self.error else "")
        return (
            f"{head}, {self.items} items, {self.new} new, {self.updated} updated, "
            f"{self.withdrawn} withdrawn, {self.item_errors} errors"
        )


# --- managing -------------------------------------------------------------------------------


def _require(actor: Actor, role: Role, doing: str) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(role)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied(f"Only a {role.value} or above can {doing}.")


def list_sources(session: Session, organisation_id: int) -> list[VacancySource]:
    query = select(VacancySource).where(VacancySource.organisation_id == organisation_id)
    return list(session.scalars(query.order_by(VacancySource.name, VacancySource.id)))


def get_source(session: Session, organisation_id: int, source_id: int) -> VacancySource:
    source = session.get(VacancySource, source_id)
    if source is None or source.organisation_id != organisation_id:
        raise NotFound("That vacancy source does not exist.")
    return source


def _checked(data: SourceInput, kind: str) -> SourceInput:
    name = " ".join(data.name.split())
    if not name:
        raise FieldError("name", "Give the source a name.")
    if len(name) > MAX_NAME:
        raise FieldError("name", f"The name is longer than {MAX_NAME} characters.")
    url = data.url.strip()
    if kind == "feed" or url:
        if not url:
            raise FieldError("url", "A feed source needs the URL of its feed.")
        if len(url) > MAX_URL:
            raise FieldError("url", f"The URL is longer than {MAX_URL} characters.")
        parts = urlsplit(url)
        if examples.is_example(url):
            problem = examples.problem(url)
            if problem is not None:
                raise FieldError("url", f"{problem[0].upper()}{problem[1:]}.")
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            raise FieldError("url", "The URL must start with http:// or https:// and name a host.")
    if not MIN_INTERVAL <= data.poll_interval_minutes <= MAX_INTERVAL:
        raise FieldError(
            "poll_interval_minutes",
            f"Poll every {MIN_INTERVAL} to {MAX_INTERVAL} minutes (a week).",
        )
    if not 1 <= data.withdraw_after_polls <= MAX_WITHDRAW_AFTER:
        raise FieldError(
            "withdraw_after_polls",
            f"Withdraw after 1 to {MAX_WITHDRAW_AFTER} polls without the vacancy.",
        )
    return SourceInput(
        name, kind, url, data.poll_interval_minutes, data.withdraw_after_polls, data.enabled
    )


def create_source(
    session: Session, actor: Actor, data: SourceInput, now: dt.datetime
) -> VacancySource:
    _require(actor, Role.MANAGER, "add vacancy sources")
    if data.kind not in EDITABLE_KINDS:
        raise FieldError("kind", "Choose a feed (fetched from a URL) or a CSV upload source.")
    data = _checked(data, data.kind)
    source = VacancySource(
        organisation_id=actor.organisation_id,
        name=data.name,
        kind=data.kind,
        url=data.url or None,
        poll_interval_minutes=data.poll_interval_minutes,
        withdraw_after_polls=data.withdraw_after_polls,
        enabled=data.enabled,
        next_poll_at=now if data.kind == "feed" else None,
        consecutive_errors=0,
        created_at=now,
    )
    session.add(source)
    session.flush()
    record(session, actor, "vacancy_source.created", "vacancy_source", source.id, now,
           name=source.name, kind=source.kind, url=source.url)  # fmt: skip
    return source


def update_source(
    session: Session, actor: Actor, source_id: int, data: SourceInput, now: dt.datetime
) -> VacancySource:
    """Change a source's name, URL, interval, withdrawal count and whether it is enabled
    (its kind stays). A changed URL forgets the conditional-GET state and item hashes."""
    _require(actor, Role.MANAGER, "change vacancy sources")
    source = get_source(session, actor.organisation_id, source_id)
    data = _checked(data, source.kind)
    changes: dict[str, object] = {}
    for name in ("name", "poll_interval_minutes", "withdraw_after_polls", "enabled"):
        value = getattr(data, name)
        if getattr(source, name) != value:
            changes[name] = value
            setattr(source, name, value)
    if source.kind != "push" and (data.url or None) != source.url:
        changes["url"] = data.url or None
        source.url = data.url or None
        source.etag = source.last_modified = source.item_hashes = None
    if source.kind == "feed" and ("enabled" in changes or "url" in changes) and source.enabled:
        source.next_poll_at = now
    session.flush()
    if changes:
        record(session, actor, "vacancy_source.updated", "vacancy_source", source.id, now,
               changes={k: str(v) for k, v in changes.items()})  # fmt: skip
    return source


def set_enabled(
    session: Session, actor: Actor, source_id: int, enabled: bool, now: dt.datetime
) -> VacancySource:
    _require(actor, Role.MANAGER, "enable or disable vacancy sources")
    source = get_source(session, actor.organisation_id, source_id)
    if source.enabled != enabled:
        source.enabled = enabled
        if enabled and source.kind == "feed":
            source.next_poll_at = now
        session.flush()
        action = "vacancy_source.enabled" if enabled else "vacancy_source.disabled"
        record(session, actor, action, "vacancy_source", source.id, now)
    return source


def request_poll(session: Session, actor: Actor, source_id: int, now: dt.datetime) -> None:
    """ "Poll now": the next worker tick polls the source (it must be an enabled feed)."""
    _require(actor, Role.MANAGER, "poll vacancy sources")
    source = get_source(session, actor.organisation_id, source_id)
    if source.kind != "feed":
        raise ServiceError("Only feed sources are polled; upload a file to a CSV source.")
    if not source.enabled:
        raise ServiceError("The source is disabled; enable it first.")
    source.next_poll_at = now
    session.flush()
    record(session, actor, "vacancy_source.poll_requested", "vacancy_source", source.id, now)


def push_source(session: Session, token: ApiToken, now: dt.datetime) -> VacancySource:
    """The push source of an API token, created on the token's first push."""
    query = select(VacancySource).where(VacancySource.api_token_id == token.id)
    source = session.scalars(query).first()
    if source is not None:
        return source
    source = VacancySource(
        organisation_id=token.organisation_id,
        name=f"API: {token.name}"[:MAX_NAME],
        kind="push",
        api_token_id=token.id,
        enabled=True,
        consecutive_errors=0,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(source)
    except IntegrityError:  # another request made it first
        return session.scalars(query).one()
    record(session, None, "vacancy_source.created", "vacancy_source", source.id, now,
           organisation_id=token.organisation_id, name=source.name, kind="push")  # fmt: skip
    return source


# --- ingesting one document -----------------------------------------------------------------


def _warnings(result: ParseResult, extra: Sequence[str] = ()) -> list[str]:
    found = [*result.warnings, *(f"item {e.position}: {e.message}" for e in result.errors)]
    found.extend(extra)
    if len(found) > MAX_WARNINGS:
        found = [*found[: MAX_WARNINGS - 1], f"... and {len(found) - MAX_WARNINGS + 1} more"]
    return found


def normalise_items(
    items: Sequence[RawItem], *, tz: str, now: dt.datetime, source_url: str, scope: str
) -> tuple[list[Vacancy], list[str]]:
    """Normalise each item; one that cannot be normalised is reported, not fatal."""
    done: list[Vacancy] = []
    problems: list[str] = []
    memo = Memo()
    try:
        zone: ZoneInfo | str = dates.timezone(tz)
    except ValueError:
        zone = tz  # each item then reports the unknown timezone, as before
    for item in items:
        try:
            done.append(
                normalise(item, tz=zone, now=now, source_url=source_url, scope=scope, memo=memo)
            )
        except Exception as exc:  # one bad item never sinks the document
            problems.append(f"item {item.position}: could not be read ({type(exc).__name__})")
    return done, problems


def retry_delay(
    interval_minutes: int, errors: int, retry_after: str | None, now: dt.datetime
) -> dt.timedelta:
    """How long a feed that has just failed `errors` times in a row waits before the next
    poll: its interval, doubled for each failure after the first (at most MAX_BACKOFF, never
    less than the interval), and at least as long as the server's Retry-After (seconds or an
    HTTP date, itself capped at MAX_BACKOFF)."""
    interval = dt.timedelta(minutes=interval_minutes)
    doublings: int = min(max(errors - 1, 0), 16)
    backoff = max(interval, min(interval * (1 << doublings), MAX_BACKOFF))
    asked = _retry_after(retry_after, now)
    return max(backoff, min(asked, MAX_BACKOFF)) if asked is not None else backoff


def _retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """A Retry-After header as a wait (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return dt.timedelta(seconds=min(int(value), int(MAX_BACKOFF.total_seconds())))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when - now, dt.timedelta(0))


def _record_error(
    session: Session,
    source: VacancySource,
    message: str,
    now: dt.datetime,
    retry_after: str | None = None,
) -> None:
    source.last_status = "error"
    source.last_error = message[:2000]
    source.consecutive_errors += 1
    source.last_polled_at = now
    source.claimed_until = None
    if source.kind == "feed":
        delay = retry_delay(
            source.poll_interval_minutes, source.consecutive_errors, retry_after, now
        )
        source.next_poll_at = now + delay


def _record_ok(source: VacancySource, status: str, outcome: PollOutcome, now: dt.datetime) -> None:
    source.last_status = status
    source.last_error = None
    source.consecutive_errors = 0
    source.last_polled_at = now
    source.claimed_until = None
    if status == "ok":
        source.last_items = outcome.items
        source.last_new = outcome.new
        source.last_updated = outcome.updated
        source.last_warnings = json.dumps(outcome.warnings)
    if source.kind == "feed":
        source.next_poll_at = now + dt.timedelta(minutes=source.poll_interval_minutes)


def _apply(
    session: Session,
    source: VacancySource,
    result: ParseResult,
    vacancies: list[Vacancy],
    problems: list[str],
    now: dt.datetime,
    *,
    full_feed: bool,
    count: int,
    seen_ids: Sequence[int] = (),
) -> tuple[PollOutcome, records.IngestResult]:
    """Ingest one parsed document for `source` and record the outcome on it."""
    ingested = records.ingest(session, source, vacancies, now)
    records.touch(session, seen_ids, now)
    drop = dedupe.count_drop_warning(source.last_items, count) if full_feed else None
    withdrawn = records.withdraw_missing(session, source, now) if full_feed and not drop else []
    outcome = PollOutcome(
        source.id,
        source.name,
        "ok",
        items=count,
        new=ingested.new,
        updated=ingested.updated,
        unchanged=len(vacancies) + len(seen_ids) - ingested.new - ingested.updated,
        withdrawn=len(withdrawn),
        item_errors=len(result.errors) + len(problems),
        warnings=_warnings(result, [*problems, *([drop] if drop else [])]),
    )
    _record_ok(source, "ok", outcome, now)
    return outcome, ingested


# --- polling --------------------------------------------------------------------------------


def _limits(settings: Settings) -> fetch.FetchLimits:
    feeds = settings.feeds
    return fetch.FetchLimits(feeds.max_body_bytes, feeds.timeout_seconds, feeds.max_redirects)


def allow_list(settings: Settings) -> AllowList:
    return parse_allow_list(settings.network.allow_private_hosts)


def _claim(
    factory: sessionmaker[Session], source_id: int, now: dt.datetime, seconds: int, due: bool
) -> bool:
    """Take the source for this poll; False if another worker holds it (or it is not due)."""
    conditions = [
        VacancySource.id == source_id,
        VacancySource.kind == "feed",
        VacancySource.enabled.is_(True),
        or_(VacancySource.claimed_until.is_(None), VacancySource.claimed_until <= now),
    ]
    if due:
        conditions.append(
            or_(VacancySource.next_poll_at.is_(None), VacancySource.next_poll_at <= now)
        )
    with factory.begin() as session:
        claimed = session.execute(
            update(VacancySource)
            .where(*conditions)
            .values(claimed_until=now + dt.timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
        return (claimed.rowcount or 0) == 1  # type: ignore[attr-defined]


def _known_hashes(text: str | None) -> dict[str, int]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int)}


def poll_source(
    factory: sessionmaker[Session],
    settings: Settings,
    source_id: int,
    now: dt.datetime,
    *,
    due_only: bool = False,
    fetcher: Fetcher = fetch.fetch,
) -> PollOutcome:
    """Claim, fetch, parse, normalise and ingest one feed source; never raises."""
    with factory() as session:
        source = session.get(VacancySource, source_id)
        if source is None:
            return PollOutcome(source_id, "?", "error", error="no such source")
        name, kind, enabled = source.name, source.kind, source.enabled
    if kind != "feed" or not enabled:
        why = "not a feed source" if kind != "feed" else "the source is disabled"
        return PollOutcome(source_id, name, "skipped", error=why)
    if not _claim(factory, source_id, now, settings.feeds.claim_seconds, due_only):
        return PollOutcome(source_id, name, "skipped", error="another worker is polling it")
    try:
        return _poll_claimed(factory, settings, source_id, now, fetcher)
    except Exception as exc:  # a failing source never stops the others
        log.exception("polling vacancy source %s failed", source_id)
        message = f"internal error while polling ({type(exc).__name__}); see the worker log"
        with factory.begin() as session:
            source = session.get(VacancySource, source_id)
            if source is not None:
                _record_error(session, source, message, now)
        return PollOutcome(source_id, name, "error", error=message)


def _poll_claimed(
    factory: sessionmaker[Session],
    settings: Settings,
    source_id: int,
    now: dt.datetime,
    fetcher: Fetcher,
) -> PollOutcome:
    with factory() as session:
        source = session.get(VacancySource, source_id)
        assert source is not None
        organisation = session.get(Organisation, source.organisation_id)
        assert organisation is not None
        tz, url, name = organisation.timezone, source.url or "", source.name
        etag, last_modified, known = source.etag, source.last_modified, source.item_hashes
    got = fetcher(
        url, allow=allow_list(settings), etag=etag, last_modified=last_modified,
        limits=_limits(settings),
    )  # fmt: skip
    parsed = _parse(got, _known_hashes(known)) if got.ok and not got.not_modified else None
    with factory.begin() as session:
        source = session.get(VacancySource, source_id)
        assert source is not None
        if got.error is not None:
            _record_error(session, source, got.error, now, got.retry_after)
            return PollOutcome(source_id, name, "error", error=got.error)
        if got.not_modified:
            outcome = PollOutcome(source_id, name, "not_modified", items=source.last_items or 0)
            _record_ok(source, "not_modified", outcome, now)
            return outcome
        assert parsed is not None
        result, hashes, seen = parsed
        if result.error is not None:
            _record_error(session, source, result.error, now)
            return PollOutcome(source_id, name, "error", error=result.error)
        base = got.final_url or url
        vacancies, problems = normalise_items(
            result.items, tz=tz, now=now, source_url=base, scope=str(source_id)
        )
        count = len(hashes) if hashes else len(result.items) + len(result.errors)
        outcome, ingested = _apply(
            session, source, result, vacancies, problems, now,
            full_feed=True, count=count, seen_ids=list(seen.values()),
        )  # fmt: skip
        source.etag, source.last_modified = got.etag, got.last_modified
        source.item_hashes = _hash_map(hashes, seen, vacancies, ingested) if hashes else None
        return outcome


def _parse(
    got: fetch.FetchResult, known: dict[str, int]
) -> tuple[ParseResult, list[str], dict[str, int]]:
    """The parse of a changed body: for RSS/Atom only the items not seen before (with every
    item's hash, and the known items still listed: hash -> vacancy id)."""
    base = got.final_url or got.url
    if detect.detect(got.body, got.content_type) != detect.RSS:
        return (
            detect.parse_document(got.body, content_type=got.content_type, source_url=base),
            [],
            {},
        )
    changed = incremental.parse_changed(
        got.body, set(known), content_type=got.content_type, source_url=base
    )
    if changed.full:
        # The byte scan and the parser disagreed about the items: keep no hashes, since they
        # could be paired with the wrong vacancies (the next poll parses everything again).
        return changed.result, [], {}
    seen = {h: known[h] for h in changed.hashes if h in known}
    return changed.result, changed.hashes, seen


def _hash_map(
    hashes: list[str],
    seen: dict[str, int],
    vacancies: list[Vacancy],
    ingested: records.IngestResult,
) -> str:
    """hash -> vacancy id of every item in the body whose record is known."""
    mapping = dict(seen)
    for vacancy, vacancy_id in zip(vacancies, ingested.ids, strict=True):
        if vacancy_id and 1 <= vacancy.position <= len(hashes):
            mapping[hashes[vacancy.position - 1]] = vacancy_id
    return json.dumps(mapping, separators=(",", ":"))


def due_sources(factory: sessionmaker[Session], now: dt.datetime, limit: int) -> list[int]:
    with factory() as session:
        query = (
            select(VacancySource.id)
            .where(
                VacancySource.kind == "feed",
                VacancySource.enabled.is_(True),
                or_(VacancySource.next_poll_at.is_(None), VacancySource.next_poll_at <= now),
                or_(VacancySource.claimed_until.is_(None), VacancySource.claimed_until <= now),
            )
            .order_by(VacancySource.next_poll_at, VacancySource.id)
            .limit(limit)
        )
        return list(session.scalars(query))


def poll_due(
    factory: sessionmaker[Session],
    settings: Settings,
    now: dt.datetime,
    *,
    fetcher: Fetcher = fetch.fetch,
    progress: Callable[[PollOutcome], None] | None = None,
) -> list[PollOutcome]:
    """Poll every enabled feed source whose next poll has come (up to `[feeds] batch_size`)."""
    outcomes = []
    for source_id in due_sources(factory, now, settings.feeds.batch_size):
        outcome = poll_source(factory, settings, source_id, now, due_only=True, fetcher=fetcher)
        if outcome.status != "skipped":
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return outcomes


def poll_all(
    factory: sessionmaker[Session],
    settings: Settings,
    now: dt.datetime,
    *,
    source_id: int | None = None,
    fetcher: Fetcher = fetch.fetch,
    progress: Callable[[PollOutcome], None] | None = None,
) -> list[PollOutcome]:
    """`campaign feeds poll`: every enabled feed source now (or the one named), due or not."""
    if source_id is None:
        with factory() as session:
            query = select(VacancySource.id).where(
                VacancySource.kind == "feed", VacancySource.enabled.is_(True)
            )
            ids = list(session.scalars(query.order_by(VacancySource.id)))
    else:
        ids = [source_id]
    outcomes = []
    for one in ids:
        outcome = poll_source(factory, settings, one, now, fetcher=fetcher)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes


# --- CSV upload -----------------------------------------------------------------------------


def upload_csv(
    session: Session,
    actor: Actor,
    source_id: int,
    body: bytes,
    now: dt.datetime,
    *,
    max_bytes: int,
) -> PollOutcome:
    """Read an uploaded CSV file as the source's document (the same ingest as a feed poll).
    A file that cannot be read at all is refused with the parser's message."""
    _require(actor, Role.MANAGER, "upload vacancies")
    source = get_source(session, actor.organisation_id, source_id)
    if source.kind != "csv":
        raise ServiceError("Files can be uploaded only to a CSV source.")
    if len(body) > max_bytes:
        raise FieldError("file", f"The file is larger than {max_bytes} bytes.")
    result = parse_csv(body, source_url=source.url or "")
    if result.error is not None:
        raise FieldError("file", f"The file could not be read: {result.error}")
    organisation = session.get(Organisation, source.organisation_id)
    assert organisation is not None
    vacancies, problems = normalise_items(
        result.items, tz=organisation.timezone, now=now, source_url=source.url or "",
        scope=str(source.id),
    )  # fmt: skip
    outcome, _ = _apply(
        session, source, result, vacancies, problems, now,
        full_feed=False, count=len(result.items) + len(result.errors),
    )  # fmt: skip
    record(session, actor, "vacancy_source.uploaded", "vacancy_source", source.id, now,
           items=outcome.items, new=outcome.new, updated=outcome.updated,
           errors=outcome.item_errors)  # fmt: skip
    return outcome


# --- the push API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PushItem:
    """One pushed vacancy, as the API received it (lengths already checked)."""

    external_id: str
    title: str
    employer: str
    url: str
    location: str = ""
    salary: str = ""
    closing_date: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()


@dataclass
class PushResult:
    index: int
    external_id: str
    result: str  # created, updated, unchanged, refused
    vacancy_id: int | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def _push_problem(item: PushItem, tz: str) -> str | None:
    parts = urlsplit(item.url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "url: must be an absolute http or https URL"
    if item.closing_date.strip():
        parsed = dates.parse_date(
            item.closing_date, dates.timezone(tz), label="closing date", end_of_day=True
        )
        if parsed.value is None:
            return f"closing_date: {parsed.warning or 'not an ISO date or date-time'}"
    return None


def push_vacancies(
    session: Session, token: ApiToken, items: Sequence[PushItem], now: dt.datetime
) -> tuple[VacancySource, list[PushResult]]:
    """Upsert pushed vacancies into the token's push source, by external id; a bad item is
    refused with its reason and the good ones are kept. The caller commits."""
    source = push_source(session, token, now)
    if not source.enabled:
        raise ServiceError("This token's push source is disabled; a manager can enable it.")
    organisation = session.get(Organisation, source.organisation_id)
    assert organisation is not None
    results = [PushResult(i, item.external_id, "refused") for i, item in enumerate(items)]
    raw: list[RawItem] = []
    for index, item in enumerate(items):
        problem = _push_problem(item, organisation.timezone)
        if problem is not None:
            results[index].reason = problem
            continue
        raw.append(
            RawItem(
                position=index + 1, guid=item.external_id, title=item.title, link=item.url,
                description_html=item.description, employer=item.employer,
                location=item.location, salary_text=item.salary,
                closing_text=item.closing_date, tags=item.tags,
            )
        )  # fmt: skip
    vacancies, problems = normalise_items(
        raw, tz=organisation.timezone, now=now, source_url="", scope=str(source.id)
    )
    for problem in problems:  # "item N: ..." for an item that could not be normalised
        position = int(problem.split(":", 1)[0].removeprefix("item "))
        results[position - 1].reason = problem.split(": ", 1)[1]
    ingested = records.ingest(session, source, vacancies, now, by_external_id=True)
    for n, vacancy in enumerate(vacancies):
        result = results[vacancy.position - 1]
        outcome = ingested.outcomes[n]
        if outcome == "duplicate":
            first = next(v.position for v, i in zip(vacancies, ingested.ids, strict=True)
                         if i == ingested.ids[n])  # fmt: skip
            result.reason = f"the same vacancy as item {first - 1} of this batch"
            continue
        result.result, result.vacancy_id = outcome, ingested.ids[n]
        result.warnings = list(vacancy.warnings)
    created = sum(1 for r in results if r.result == "created")
    source.last_polled_at = now
    source.last_status = "ok"
    source.last_error = None
    source.last_items = len(items)
    source.last_new = created
    source.last_updated = sum(1 for r in results if r.result == "updated")
    refused = [f"item {r.index}: {r.reason}" for r in results if r.result == "refused"]
    source.last_warnings = json.dumps(refused[:MAX_WARNINGS])
    session.flush()
    return source, results
