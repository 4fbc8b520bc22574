"""Posts in bulk: a CSV file previewed row by row, then all or chosen rows saved; and export.

Every row goes through `posts.check` and is saved with `posts.create_post`, so a row meets
exactly the rules of the compose form (length per network, a time from now on, blackouts,
duplicates). The preview saves nothing; the commit parses and checks the file again, since it
comes back from a browser, and saves in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaign.models import Channel, Delivery, Organisation, Post, Role, User
from campaign.services import (
    NotFound,
    PermissionDenied,
    ServiceError,
    campaigns,
    csv_files,
    posts,
    scheduling,
)
from campaign.services.audit import Actor
from campaign.services.csv_files import CsvFileError
from campaign.services.local_time import Resolved, format_local, parse_local, resolve_local
from campaign.services.posts import PostInput
from campaign.services.text_rules import ChannelLimits, check_text, normalised

COLUMNS = ("text", "channels", "when", "link_url", "variant_id", "blackout_override", "submit")
REQUIRED = ("text", "channels")
EXPORT_COLUMNS = (
    "post_id", "status", "text", "link_url", "channels", "when", "when_utc",
    "delivery_statuses", "variant_id", "created_by", "created_at",
)  # fmt: skip
# Written by export, accepted and ignored by import, so an export can be imported again.
EXPORT_ONLY = tuple(c for c in EXPORT_COLUMNS if c not in COLUMNS)
COLUMN_HELP = (
    ("text", "Required. The post's text."),
    ("channels", "Required. One or more of your channels, by name (any case) or number, "
                 "separated by ;"),
    ("when", "“YYYY-MM-DD HH:MM” in your organisation's time zone, or ISO 8601 with an offset. "
             "Empty: each channel's next free queue slot."),
    ("link_url", "Optional. The link the post is about."),
    ("variant_id", "Optional. The number of one of your organisation's variants."),
    ("blackout_override", "Optional. Why the post may go out inside a blackout key date."),
    ("submit", "Optional: yes or no (true/false, 1/0). No, the default, saves a draft; yes "
               "submits it for approval, or straight to the queue."),
)  # fmt: skip
MAX_BYTES = 1024 * 1024
MAX_ROWS = 1000
_YES = frozenset({"yes", "true", "1"})
_NO = frozenset({"no", "false", "0", ""})
# A spreadsheet runs a cell starting with one of these as a formula; export defuses them with a
# leading quote, which import takes off again.
# The file's own duplicate guard compares a row with this many earlier rows (the pairs grow
# with the square of the file's length).
_SAME_FILE_LOOKBACK = 100
_MAX_ID = 2**31 - 1  # beyond it no row exists, and PostgreSQL would refuse the comparison


@dataclass(frozen=True)
class Problem:
    """What stops a row, named by its column when it belongs to one."""

    column: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.column}: {self.message}" if self.column else self.message


@dataclass
class Row:
    """One line of the file: its values as read, as understood, and its verdict."""

    line: int  # as a spreadsheet counts: the header is line 1
    values: dict[str, str]
    channels: list[Channel] = field(default_factory=list)
    when: str | None = None  # None: each channel's queue
    variant_id: int | None = None
    submit: bool = False
    times: dict[int, Resolved] = field(default_factory=dict)  # channel id -> when
    errors: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def text(self) -> str:
        return self.values.get("text", "")

    @property
    def use_queue(self) -> bool:
        return self.when is None

    def post_input(
        self, channels: Sequence[Channel] | None = None, when: str | None = None
    ) -> PostInput:
        """What posts.check and create_post take; `when` stands in for the queue."""
        return PostInput(
            text=self.text,
            channel_ids=tuple(c.id for c in (self.channels if channels is None else channels)),
            when=when or self.when,
            use_queue=self.use_queue and when is None,
            link_url=self.values.get("link_url", "").strip() or None,
            variant_id=self.variant_id,
            blackout_override=self.values.get("blackout_override", "").strip() or None,
        )


@dataclass
class Preview:
    rows: list[Row]
    errors: list[str] = field(default_factory=list)  # about the whole file

    @property
    def good(self) -> list[Row]:
        return [r for r in self.rows if r.ok]

    @property
    def bad(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]


@dataclass(frozen=True)
class LineOutcome:
    line: int
    outcome: str  # saved | refused | not_chosen
    post_id: int | None = None
    status: str | None = None  # the saved post's status
    messages: tuple[str, ...] = ()  # why it was refused, or the warnings of a saved post


@dataclass
class CommitReport:
    lines: list[LineOutcome]
    errors: list[str] = field(default_factory=list)  # about the whole file

    @property
    def saved(self) -> list[LineOutcome]:
        return [o for o in self.lines if o.outcome == "saved"]

    @property
    def not_saved(self) -> list[LineOutcome]:
        return [o for o in self.lines if o.outcome != "saved"]


# --- import ---------------------------------------------------------------------------------


def preview(session: Session, organisation: Organisation, data: bytes, now: dt.datetime) -> Preview:
    """Every row read and checked as the form would check it, with nothing saved."""
    try:
        rows = _read(session, organisation.id, data)
    except CsvFileError as exc:
        return Preview(rows=[], errors=exc.messages)
    taken: dict[int, list[dt.datetime]] = {}
    earlier: list[Row] = []
    for row in rows:
        _check(session, organisation, row, now, taken)
        if row.ok:
            _warn_same_file(organisation, row, earlier)
            earlier.append(row)
            for channel_id, resolved in row.times.items():
                taken.setdefault(channel_id, []).append(resolved.utc)
    return Preview(rows=rows)


def commit(
    session: Session,
    organisation: Organisation,
    data: bytes,
    chosen_lines: set[int] | None,
    actor: Actor,
    now: dt.datetime,
) -> CommitReport:
    """Check the file again and save its chosen good rows (None: all good rows) as posts."""
    _require_staff(actor)
    try:
        rows = _read(session, organisation.id, data)
    except CsvFileError as exc:
        return CommitReport(lines=[], errors=exc.messages)
    report = CommitReport(lines=[])
    for row in rows:
        if chosen_lines is not None and row.line not in chosen_lines:
            report.lines.append(LineOutcome(row.line, "not_chosen", messages=_said(row.errors)))
            continue
        # Rows saved before this one are flushed, so the queue and the duplicate guard see them.
        _check(session, organisation, row, now, {})
        if not row.ok:
            report.lines.append(LineOutcome(row.line, "refused", messages=_said(row.errors)))
            continue
        try:
            saved = posts.create_post(
                session, organisation, row.post_input(), actor, now, row.submit
            )
        except PermissionDenied:
            raise
        except ServiceError as exc:
            report.lines.append(LineOutcome(row.line, "refused", messages=(str(exc),)))
            continue
        report.lines.append(
            LineOutcome(
                row.line,
                "saved",
                post_id=saved.post.id,
                status=saved.post.status,
                messages=tuple(saved.warnings + saved.notes),
            )
        )
    return report


def template(session: Session, organisation: Organisation, now: dt.datetime) -> str:
    """A CSV to fill in: the header and two example rows on the organisation's first channel."""
    channels = campaigns.list_channels(session, organisation.id)
    usable = [c for c in channels if c.status != "disabled"]
    first = usable[0] if usable else None
    name = _channel_ref(first, channels) if first else "Your channel's name"
    day = (now.astimezone(organisation.zone) + dt.timedelta(days=7)).date()
    # The second row joins the queue when the channel has slots; else it shows a later time.
    queued = first is not None and bool(scheduling.channel_slots(session, first.id))
    fair = "Careers fair on Thursday: 60 employers, free entry. Book a slot: "
    link = "https://careers.example.ac.uk/fair"
    mock = "Mock interviews this week, with feedback the same day. Book before Friday."
    later = "" if queued else f"{day + dt.timedelta(days=1):%Y-%m-%d} 12:30"
    return csv_files.write(
        [
            list(COLUMNS),
            [fair + link, name, f"{day:%Y-%m-%d} 09:30", link, "", "", "no"],
            [mock, name, later, "", "", "", "no"],
        ]
    )


def _require_staff(actor: Actor) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.STAFF)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied("Only a staff member or above can import posts.")


def _said(problems: Sequence[Problem]) -> tuple[str, ...]:
    return tuple(str(p) for p in problems)


# --- reading the file -----------------------------------------------------------------------


def _read(session: Session, organisation_id: int, data: bytes) -> list[Row]:
    """The file's non-blank rows, parsed; CsvFileError when the file itself is unusable."""
    csv_files.check_size(data, MAX_BYTES)
    records = csv_files.records(csv_files.decode(data), MAX_ROWS)
    header_at = csv_files.header_at(records)
    if header_at is None:
        raise CsvFileError(f"The file is empty. Its first line must be the header: {_listed()}.")
    names = csv_files.header_names(records[header_at])
    _check_header(names)
    index = _ChannelIndex(campaigns.list_channels(session, organisation_id))
    rows = []
    for number, cells in enumerate(records[header_at + 1 :], start=header_at + 2):
        if any(c.strip() for c in cells):
            rows.append(_row(number, names, cells, index))
    if not rows:
        raise CsvFileError("The file has a header but no rows of posts.")
    return rows


def _check_header(names: list[str]) -> None:
    known = set(COLUMNS) | set(EXPORT_ONLY)
    problems = csv_files.header_problems(names, known, REQUIRED, _listed())
    if problems:
        raise CsvFileError(*problems)


def _listed() -> str:
    return ", ".join(COLUMNS)


class _ChannelIndex:
    """The organisation's channels by number and by name (case-insensitive)."""

    def __init__(self, channels: list[Channel]) -> None:
        self.channels = channels
        self.by_id = {c.id: c for c in channels}
        self.by_name: dict[str, list[Channel]] = {}
        for channel in channels:
            self.by_name.setdefault(channel.display_name.strip().casefold(), []).append(channel)

    def find(self, ref: str) -> tuple[Channel | None, Problem | None]:
        if ref.isascii() and ref.isdigit() and int(ref) in self.by_id:
            return self.by_id[int(ref)], None
        named = self.by_name.get(ref.casefold(), [])
        if len(named) == 1:
            return named[0], None
        if named:
            ids = " or ".join(str(c.id) for c in named)
            return None, Problem(
                "channels", f"{len(named)} channels are called “{ref}”; use its number ({ids})."
            )
        known = ", ".join(f"{c.display_name} ({c.id})" for c in self.channels[:12])
        return None, Problem(
            "channels",
            f"unknown channel “{ref}”. "
            + (f"Your channels are: {known}." if known else "Your organisation has no channels."),
        )


def _row(number: int, names: list[str], cells: list[str], index: _ChannelIndex) -> Row:
    cells = [csv_files.unescape(c) for c in cells]
    row = Row(line=number, values={})
    for position, value in enumerate(cells):
        name = names[position] if position < len(names) else ""
        if name in COLUMNS:
            row.values[name] = value
        elif not name and value.strip():
            where = "is beyond the header" if position >= len(names) else "has no column name"
            row.errors.append(
                Problem(
                    None,
                    f"cell {position + 1} has a value but {where}; remove the value or name its "
                    "column in the header.",
                )
            )
    if not row.text.strip():
        row.errors.append(Problem("text", "is empty; every row needs the post's text."))
    refs = [r.strip() for r in row.values.get("channels", "").split(";") if r.strip()]
    if not refs:
        row.errors.append(Problem("channels", "is empty; name at least one channel."))
    for ref in dict.fromkeys(refs):
        channel, problem = index.find(ref)
        if problem is not None:
            row.errors.append(problem)
        elif channel is not None and channel not in row.channels:
            row.channels.append(channel)
    row.when = row.values.get("when", "").strip() or None
    variant = row.values.get("variant_id", "").strip()
    if variant and not (variant.isascii() and variant.isdigit()):
        row.errors.append(Problem("variant_id", f"“{variant}” is not a variant's number."))
    elif variant and int(variant) > _MAX_ID:
        row.errors.append(
            Problem("variant_id", f"there is no variant {variant} in your organisation.")
        )
    elif variant:
        row.variant_id = int(variant)
    reason = row.values.get("blackout_override", "")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in reason):
        row.errors.append(
            Problem("blackout_override", "contains a control character; remove it and try again.")
        )
    submit = row.values.get("submit", "").strip().lower()
    if submit not in _YES | _NO:
        row.errors.append(Problem("submit", f"“{submit}” is neither yes nor no."))
    row.submit = submit in _YES
    return row


# --- checking a row -------------------------------------------------------------------------


def _check(
    session: Session,
    organisation: Organisation,
    row: Row,
    now: dt.datetime,
    taken: Mapping[int, Iterable[dt.datetime]],
) -> None:
    """Run the form's checks on a row; `taken`: queue times used by earlier rows of the file."""
    if not row.channels:
        return
    times, time_problems, notes = _times(session, organisation, row, now, taken)
    if time_problems:
        row.errors += time_problems
        row.errors += _text_problems(row)  # still say what else is wrong
        return
    # The queue may give each channel its own time; posts.check takes one time per call.
    groups: dict[dt.datetime, list[Channel]] = {}
    for channel in row.channels:
        groups.setdefault(times[channel.id].utc, []).append(channel)
    warnings = list(notes)
    for instant, channels in groups.items():
        when = instant.isoformat() if row.use_queue else row.when
        try:
            try:
                plan = posts.check(session, organisation, row.post_input(channels, when), now)
            except NotFound:
                row.errors.append(
                    Problem(
                        "variant_id", f"there is no variant {row.variant_id} in your organisation."
                    )
                )
                row.variant_id = None
                plan = posts.check(session, organisation, row.post_input(channels, when), now)
        except OverflowError:  # the duplicate guard's window runs past year 9999
            row.errors.append(Problem("when", f"{row.when} is too far ahead to plan for."))
            return
        text_problems = {
            f"{c.display_name}: {p}"
            for c, verdict in zip(plan.channels, plan.checks, strict=True)
            for p in verdict.problems
        }
        for problem in plan.problems:
            issue = Problem(_column_of(problem, text_problems, row), problem)
            if issue.column == "text" and not row.text.strip():
                continue  # already said: the text is empty
            if issue not in row.errors:
                row.errors.append(issue)
        warnings += plan.notes + plan.warnings
    row.warnings += list(dict.fromkeys(warnings))
    row.times = times


def _times(
    session: Session,
    organisation: Organisation,
    row: Row,
    now: dt.datetime,
    taken: Mapping[int, Iterable[dt.datetime]],
) -> tuple[dict[int, Resolved], list[Problem], list[str]]:
    """Each channel's time: the row's `when`, or the next queue slot no earlier row took."""
    zone = organisation.timezone
    if row.use_queue:
        times, problems = {}, []
        for channel in row.channels:
            try:
                times[channel.id] = scheduling.next_queue_time(
                    session, channel, zone, now, also_taken=taken.get(channel.id, ())
                )
            except ServiceError as exc:
                problems.append(
                    Problem("when", f"is empty, so the post joins the queue, but {exc}")
                )
        notes = [
            f"{c.display_name}: {times[c.id].note}"
            for c in row.channels
            if c.id in times and times[c.id].note
        ]
        return times, problems, notes
    try:
        when = parse_local(row.when or "", zone)
    except ValueError as exc:
        return {}, [Problem("when", str(exc))], []
    except OverflowError:  # e.g. year 1 in a zone ahead of UTC
        return (
            {},
            [Problem("when", f"{row.when} is out of range; write a date like 2026-03-29.")],
            [],
        )
    if when.utc <= now:
        shown = format_local(when.utc, zone)
        return {}, [Problem("when", f"{shown} is in the past; choose a time from now on.")], []
    return {c.id: when for c in row.channels}, [], []


def _text_problems(row: Row) -> list[Problem]:
    text = normalised(row.text)
    return [
        Problem("text", f"{c.display_name}: {p}")
        for c in row.channels
        for p in check_text(text, ChannelLimits.of(c)).problems
        if row.text.strip()
    ]


def _column_of(problem: str, text_problems: set[str], row: Row) -> str | None:
    if problem in text_problems:
        return "text"
    lowered = problem.lower()
    if "blackout" in lowered:
        return "when"
    if row.values.get("link_url", "").strip() and ("link" in lowered or "address" in lowered):
        return "link_url"
    if any(problem.startswith(c.display_name) for c in row.channels) or "channel" in lowered:
        return "channels"
    return None


def _warn_same_file(organisation: Organisation, row: Row, earlier: list[Row]) -> None:
    """The duplicate guard among the file's own rows, which are not in the database yet."""
    window = dt.timedelta(hours=organisation.duplicate_window_hours)
    if window <= dt.timedelta(0):
        return
    mine = _comparable(row.text)
    matcher = difflib.SequenceMatcher(None)
    matcher.set_seq2(mine)  # compared with many: SequenceMatcher caches its second sequence
    for other in earlier[-_SAME_FILE_LOOKBACK:]:
        shared = [
            c
            for c in row.channels
            if c.id in other.times and abs(other.times[c.id].utc - row.times[c.id].utc) <= window
        ]
        if not shared:
            continue
        theirs = _comparable(other.text)
        matcher.set_seq1(theirs)
        if theirs == mine:
            how = "The same text"
        elif min(matcher.real_quick_ratio(), matcher.quick_ratio()) < scheduling.NEAR_IDENTICAL:
            continue
        elif matcher.ratio() >= scheduling.NEAR_IDENTICAL:
            how = "Nearly the same text"
        else:
            continue
        for channel in shared:
            shown = format_local(other.times[channel.id].utc, organisation.timezone)
            row.warnings.append(
                f"{how} is on line {other.line} of this file, on {channel.display_name} for "
                f"{shown}."
            )


def _comparable(text: str) -> str:
    return " ".join(normalised(text).casefold().split())


# --- export ---------------------------------------------------------------------------------


def export(
    session: Session,
    organisation_id: int,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> str:
    """The organisation's posts (scheduled in [start, end) when given) as CSV, import-ready."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("no such organisation")
    query = (
        select(Post)
        .where(Post.organisation_id == organisation_id)
        .options(selectinload(Post.deliveries).selectinload(Delivery.channel))
        .order_by(Post.scheduled_for, Post.id)
    )
    if start is not None:
        query = query.where(Post.scheduled_for >= start)
    if end is not None:
        query = query.where(Post.scheduled_for < end)
    found = list(session.scalars(query))
    creators = {i for i in (p.created_by_id for p in found) if i is not None}
    emails: dict[int, str] = {}
    if creators:
        emails = {
            i: e
            for i, e in session.execute(select(User.id, User.email).where(User.id.in_(creators)))
        }
    channels = campaigns.list_channels(session, organisation_id)
    lines: list[list[str]] = [list(EXPORT_COLUMNS)]
    for post in found:
        standing = [d for d in post.heads if d.status != "cancelled"] or post.heads
        lines.append(
            [
                str(post.id),
                post.status,
                post.text,
                post.link_url or "",
                ";".join(_channel_ref(d.channel, channels) for d in standing),
                _local(post.scheduled_for, organisation) if post.scheduled_for else "",
                _utc(post.scheduled_for) if post.scheduled_for else "",
                "; ".join(f"{d.channel.display_name}: {d.status}" for d in post.heads),
                str(post.variant_id) if post.variant_id is not None else "",
                emails.get(post.created_by_id, "") if post.created_by_id else "",
                _utc(post.created_at),
            ]
        )
    return csv_files.write(lines)


def export_range(
    first: str | None, last: str | None, zone: str
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """From the start of day `first` to the end of day `last` (YYYY-MM-DD, local), in UTC."""
    bounds: list[dt.datetime | None] = []
    for name, value, extra in (("from", first, 0), ("to", last, 1)):
        value = (value or "").strip()
        if not value:
            bounds.append(None)
            continue
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            message = f"{name}: “{value}” is not a date; write it like 2026-03-01."
            raise ServiceError(message) from None
        bounds.append(resolve_local(day + dt.timedelta(days=extra), dt.time(0), zone).utc)
    start, end = bounds
    if start is not None and end is not None and end <= start:
        raise ServiceError("to: the last day comes before the first; swap them.")
    return start, end


def _channel_ref(channel: Channel, channels: Sequence[Channel]) -> str:
    """The channel's name, or its number when the name would not read back as this channel."""
    name = channel.display_name
    key = name.strip().casefold()
    clash = sum(1 for c in channels if c.display_name.strip().casefold() == key) > 1
    if (
        clash
        or not key
        or ";" in name
        or name != name.strip()
        or (name.isascii() and name.isdigit())
    ):
        return str(channel.id)
    return name


def _local(instant: dt.datetime, organisation: Organisation) -> str:
    """Wall time, or ISO with the offset when the wall time alone would name another instant."""
    local = instant.astimezone(organisation.zone)
    wall = f"{local:%Y-%m-%d %H:%M}"
    if parse_local(wall, organisation.timezone).utc == instant:
        return wall
    return local.isoformat(timespec="seconds")


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
