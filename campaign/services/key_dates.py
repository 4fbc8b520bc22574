"""Key dates of the academic year: listed by anyone in the organisation, changed by admins.

A key date is shown on the calendar and can be a boost (a good time to post) or a blackout
(scheduling inside it needs an explicit override). Admins add them by hand or import an iCal file;
an imported date keeps its event's UID, so importing the same file again updates it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import KEY_DATE_EFFECTS, KEY_DATE_KINDS, KeyDate, Organisation, Role
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor, record
from campaign.services.ical_events import (
    FIRST_YEAR,
    LAST_YEAR,
    NOTES_MAX,
    Refusal,
    clean_text,
    read_events,
)

TITLE_MAX = 200
KIND_LABELS = {
    "term": "Term",
    "exams": "Exams",
    "results": "Results day",
    "careers_fair": "Careers fair",
    "deadline": "Deadline",
    "other": "Other",
}
EFFECT_LABELS = {"none": "Shown only", "boost": "Boost", "blackout": "Blackout"}
# Words in an event's title that name its kind; the first rule that matches wins, so "Exam
# results" is a results day and "Exam entry deadline" a deadline.
_KIND_WORDS = (
    ("results", re.compile(r"\bresults?\b", re.IGNORECASE)),
    ("careers_fair", re.compile(r"\bfairs?\b", re.IGNORECASE)),
    ("deadline", re.compile(r"\b(deadlines?|closing dates?)\b", re.IGNORECASE)),
    ("exams", re.compile(r"\b(exams?|examinations?)\b", re.IGNORECASE)),
    ("term", re.compile(r"\b(terms?|semesters?)\b", re.IGNORECASE)),
)


@dataclass(frozen=True)
class KeyDateInput:
    """What an admin gives for a key date; dates are ISO (YYYY-MM-DD), the end defaults to the
    start."""

    title: str
    starts_on: str
    ends_on: str = ""
    kind: str = "other"
    effect: str = "none"
    notes: str = ""


@dataclass
class ImportReport:
    """What an iCal import did: counts, the events refused and why, and notes on repetitions."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def list_key_dates(
    session: Session,
    organisation_id: int,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> list[KeyDate]:
    """The organisation's key dates overlapping [first, last] (either end open), by start."""
    query = select(KeyDate).where(KeyDate.organisation_id == organisation_id)
    if first is not None:
        query = query.where(KeyDate.ends_on >= first)
    if last is not None:
        query = query.where(KeyDate.starts_on <= last)
    return list(session.scalars(query.order_by(KeyDate.starts_on, KeyDate.id)))


def list_past(
    session: Session, organisation_id: int, today: dt.date, limit: int, offset: int = 0
) -> list[KeyDate]:
    """Key dates that ended before `today`, most recent first, paged."""
    query = (
        select(KeyDate)
        .where(KeyDate.organisation_id == organisation_id, KeyDate.ends_on < today)
        .order_by(KeyDate.ends_on.desc(), KeyDate.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def get_key_date(session: Session, organisation_id: int, key_date_id: int) -> KeyDate:
    """One key date of this organisation; NotFound otherwise."""
    found = session.get(KeyDate, key_date_id)
    if found is None or found.organisation_id != organisation_id:
        raise NotFound("no such key date")
    return found


def create_key_date(
    session: Session, organisation_id: int, data: KeyDateInput, actor: Actor, now: dt.datetime
) -> KeyDate:
    """Add a key date (admins only), audited."""
    _require_admin(actor, organisation_id)
    values = _checked(data)
    key_date = KeyDate(organisation_id=organisation_id, created_at=now, **values)
    session.add(key_date)
    session.flush()
    record(session, actor, "key_date.created", "key_date", key_date.id, now, **_shown(values))
    return key_date


def update_key_date(
    session: Session,
    organisation_id: int,
    key_date_id: int,
    data: KeyDateInput,
    actor: Actor,
    now: dt.datetime,
) -> KeyDate:
    """Change a key date (admins only); the audit entry lists what changed."""
    _require_admin(actor, organisation_id)
    key_date = get_key_date(session, organisation_id, key_date_id)
    values = _checked(data)
    changes = _apply(key_date, values)
    if changes:
        session.flush()
        record(session, actor, "key_date.updated", "key_date", key_date.id, now, changes=changes)
    return key_date


def delete_key_date(
    session: Session, organisation_id: int, key_date_id: int, actor: Actor, now: dt.datetime
) -> None:
    """Remove a key date (admins only), audited with what it was."""
    _require_admin(actor, organisation_id)
    key_date = get_key_date(session, organisation_id, key_date_id)
    gone = _shown(_values(key_date))
    session.delete(key_date)
    session.flush()
    record(session, actor, "key_date.deleted", "key_date", key_date_id, now, **gone)


def import_ical(
    session: Session,
    organisation: Organisation,
    data: bytes,
    actor: Actor,
    now: dt.datetime,
    default_effect: str = "none",
) -> ImportReport:
    """Add or update key dates from an iCal file (admins only). Each event becomes a key date
    keyed by its UID; a new one takes its kind from its title and `default_effect`, while an
    existing one keeps the kind and effect it has and takes the file's title, dates and notes.
    Bad events are reported with the reason and the good ones kept; a file that cannot be read
    at all is a ServiceError."""
    _require_admin(actor, organisation.id)
    if default_effect not in KEY_DATE_EFFECTS:
        raise ServiceError(_one_of("effect", default_effect, KEY_DATE_EFFECTS))
    today = now.astimezone(organisation.zone).date()
    reading = read_events(data, organisation.zone, today)
    existing = {
        k.uid: k
        for k in session.scalars(
            select(KeyDate).where(
                KeyDate.organisation_id == organisation.id, KeyDate.uid.is_not(None)
            )
        )
    }
    report = ImportReport(refused=reading.refused, notes=reading.notes)
    added: list[tuple[KeyDate, dict[str, Any]]] = []
    updated: list[tuple[KeyDate, dict[str, object]]] = []
    for item in reading.dates:
        values: dict[str, Any] = {
            "title": item.title,
            "starts_on": item.starts_on,
            "ends_on": item.ends_on,
            "notes": item.notes,
        }
        found = existing.get(item.uid)
        if found is None:
            values |= {"kind": guess_kind(item.title), "effect": default_effect, "uid": item.uid}
            key_date = KeyDate(organisation_id=organisation.id, created_at=now, **values)
            session.add(key_date)
            existing[item.uid] = key_date
            added.append((key_date, values))
        elif changes := _apply(found, values):
            updated.append((found, changes))
        else:
            report.unchanged += 1
    session.flush()  # once, for the new ids: a file can hold a couple of thousand dates
    for key_date, values in added:
        record(
            session, actor, "key_date.created", "key_date", key_date.id, now,
            source="ical", **_shown(values),
        )  # fmt: skip
    for key_date, changes in updated:
        record(
            session, actor, "key_date.updated", "key_date", key_date.id, now,
            source="ical", uid=key_date.uid, changes=changes,
        )  # fmt: skip
    report.added, report.updated = len(added), len(updated)
    record(
        session, actor, "key_dates.imported", "key_date", None, now,
        added=report.added, updated=report.updated, unchanged=report.unchanged,
        refused=len(report.refused),
    )  # fmt: skip
    return report


def guess_kind(title: str) -> str:
    """A key date's kind from the words of its title: term, exam, result, fair, deadline."""
    return next((kind for kind, words in _KIND_WORDS if words.search(title)), "other")


def describe_span(key_date: KeyDate) -> str:
    """ "Mon 2 Mar 2026" or "Mon 2 Mar – Fri 6 Mar 2026", for lists."""
    first, last = key_date.starts_on, key_date.ends_on
    if first == last:
        return f"{first:%a} {first.day} {first:%b %Y}"
    head = f"{first:%a} {first.day} {first:%b}" + (
        "" if first.year == last.year else f" {first:%Y}"
    )
    return f"{head} – {last:%a} {last.day} {last:%b %Y}"


# --- checks ---------------------------------------------------------------------------------


def _require_admin(actor: Actor, organisation_id: int) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.ADMIN)
    except ValueError:
        allowed = False
    if not allowed or actor.organisation_id != organisation_id:
        raise PermissionDenied("Only an admin can change key dates.")


def _checked(data: KeyDateInput) -> dict[str, object]:
    title = clean_text(data.title, keep_newlines=False)
    if not title:
        raise ServiceError("Give the key date a title, such as “Autumn term” or “Results day”.")
    if len(title) > TITLE_MAX:
        raise ServiceError(
            f"The title is {len(title)} characters long; keep it to {TITLE_MAX} at most."
        )
    if data.kind not in KEY_DATE_KINDS:
        raise ServiceError(_one_of("kind", data.kind, KEY_DATE_KINDS))
    if data.effect not in KEY_DATE_EFFECTS:
        raise ServiceError(_one_of("effect", data.effect, KEY_DATE_EFFECTS))
    starts_on = _date(data.starts_on, "start")
    ends_on = _date(data.ends_on, "end") if data.ends_on.strip() else starts_on
    if ends_on < starts_on:
        raise ServiceError(
            f"The end ({ends_on.isoformat()}) is before the start ({starts_on.isoformat()}): "
            "a key date ends on or after the day it starts."
        )
    notes = clean_text(data.notes, keep_newlines=True)
    if len(notes) > NOTES_MAX:
        raise ServiceError(f"The notes are {len(notes)} characters; keep them to {NOTES_MAX}.")
    return {
        "title": title,
        "kind": data.kind,
        "effect": data.effect,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "notes": notes,
    }


def _date(text: str, which: str) -> dt.date:
    raw = text.strip()
    if not raw:
        raise ServiceError(f"Give the {which} date, like 2026-09-28.")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ServiceError(
            f"The {which} date {raw[:40]!r} is not a date; write it like 2026-09-28."
        )
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ServiceError(f"The {which} date {raw} does not exist.") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ServiceError(f"The {which} date must be between {FIRST_YEAR} and {LAST_YEAR}.")
    return day


def _one_of(what: str, value: str, allowed: Sequence[str]) -> str:
    return f"Unknown {what} {value[:40]!r}: use one of {', '.join(allowed)}."


def _values(key_date: KeyDate) -> dict[str, object]:
    return {
        "title": key_date.title,
        "kind": key_date.kind,
        "effect": key_date.effect,
        "starts_on": key_date.starts_on,
        "ends_on": key_date.ends_on,
        "notes": key_date.notes,
    }


def _apply(key_date: KeyDate, values: dict[str, object]) -> dict[str, object]:
    """Set the values on the key date; the changes as {field: [old, new]} for the audit (notes
    only as "changed": they can be long)."""
    changes: dict[str, object] = {}
    for name, new in values.items():
        old = getattr(key_date, name)
        if old != new:
            changes[name] = "changed" if name == "notes" else [_plain(old), _plain(new)]
            setattr(key_date, name, new)
    return changes


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The values as the audit trail keeps them (dates as ISO text), notes left out."""
    return {k: _plain(v) for k, v in values.items() if k != "notes"}


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value
