"""Vacancy records: ingest one document's normalised items, expire, withdraw, list.

`ingest` takes a source and the `campaign.vacancies.records.Vacancy` items of one document. It
loads only the organisation's stored vacancies that share a key with the batch, lets
`dedupe.match` decide new / update / unchanged / duplicate, then inserts, updates and touches in
bulk. An update never creates a second record: an item from another source that matches a stored
vacancy updates that vacancy, and its GUID is remembered as a `VacancyListing` of that vacancy, so
that the source's later edits (a new title, say) still find it. Ingests of one organisation are
serialised (on PostgreSQL by a transaction-scoped advisory lock; SQLite's write lock already
does it), so two sources listing the same new job at once cannot both insert it. The caller
commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    any_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, selectinload

from campaign.models import Vacancy, VacancyListing, VacancySource
from campaign.models.vacancy import VACANCY_STATUSES
from campaign.services import NotFound
from campaign.vacancies import dedupe
from campaign.vacancies.records import DedupeKeys
from campaign.vacancies.records import Vacancy as Item

# Column lengths of campaign.models.vacancy.
MAX_KEY = 1000
_LENGTHS = {
    "external_id": 500,
    "title": 500,
    "employer": 300,
    "location": 300,
    "salary_text": 500,
}
MAX_URL = 2000
MAX_SALARY = Decimal("9999999999.99")  # Numeric(12, 2)
_CHUNK = 400  # keys per IN (...) list: well under every database's parameter limit
INSERT_BATCH = 1000  # new vacancies per executemany
ID_CHUNK = 2000  # ids per IN (...) list when touching records
SCAN_FACTOR = 4  # read all the organisation's keys when it holds at most 4x the batch's keys
# First key of the PostgreSQL advisory lock that serialises one organisation's ingests.
INGEST_LOCK = 1_700_017


@dataclass
class IngestResult:
    """What one document did: counts, and per incoming item its outcome and vacancy id."""

    outcomes: list[str] = field(default_factory=list)  # created/updated/unchanged/duplicate
    ids: list[int] = field(default_factory=list)  # the vacancy each item landed on
    reopened: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o == outcome)

    @property
    def new(self) -> int:
        return self.count("created")

    @property
    def updated(self) -> int:
        return self.count("updated")


def storable_key(key: str | None) -> str | None:
    """A de-duplication key that fits its column: a very long one is replaced by its hash
    (equal keys still give equal stored keys, so matching is unchanged)."""
    if key is None or len(key) <= MAX_KEY:
        return key
    return "h:" + hashlib.blake2b(key.encode(), digest_size=20).hexdigest()


def _stored_keys(keys: DedupeKeys) -> DedupeKeys:
    return DedupeKeys(
        storable_key(keys.guid),
        storable_key(keys.url),
        storable_key(keys.fingerprint),
        storable_key(keys.title) or "",
    )


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _salary(value: Decimal | None, warnings: list[str]) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or abs(value) > MAX_SALARY:
        warnings.append("the salary figure is too large to store; only the salary text is kept")
        return None
    return value.quantize(Decimal("0.01"))


def _row(item: Item, keys: DedupeKeys) -> dict[str, object]:
    """The column values of an item (not status, times or ids)."""
    warnings = list(item.warnings)
    url = item.url
    if len(url) > MAX_URL:
        warnings.append(f"the link is longer than {MAX_URL} characters and was not kept")
        url = ""
    currency = (
        item.salary_currency if item.salary_currency and len(item.salary_currency) == 3 else None
    )
    period = item.salary_period if item.salary_period and len(item.salary_period) <= 10 else None
    row: dict[str, object] = {
        name: _cap(getattr(item, name), limit) for name, limit in _LENGTHS.items()
    }
    row.update(
        url=url,
        description_html=item.description_html,
        description_text=item.description_text,
        posted_at=item.posted_at,
        closes_at=item.closes_at,
        salary_min=_salary(item.salary_min, warnings),
        salary_max=_salary(item.salary_max, warnings),
        salary_currency=currency,
        salary_period=period,
        flags=",".join(sorted(item.flags)),
        warnings=json.dumps(warnings),
        tags=json.dumps(list(item.tags)),
        content_hash=item.content_hash,
        guid_key=keys.guid,
        url_key=keys.url,
        fingerprint=keys.fingerprint,
        title_key=keys.title,
    )
    return row


_T = TypeVar("_T")


def _chunks(values: Sequence[_T], size: int = _CHUNK) -> Iterable[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def candidates(
    session: Session, organisation_id: int, keys: Sequence[DedupeKeys]
) -> tuple[list[dedupe.Existing], dict[int, int]]:
    """The organisation's stored vacancies sharing a GUID, URL or fingerprint with `keys`, and
    the source of each (vacancy id -> source id)."""
    columns = (
        Vacancy.id,
        Vacancy.source_id,
        Vacancy.guid_key,
        Vacancy.url_key,
        Vacancy.fingerprint,
        Vacancy.title_key,
        Vacancy.content_hash,
    )
    found: dict[int, dedupe.Existing] = {}
    owners: dict[int, int] = {}
    wanted = (
        (Vacancy.guid_key, {k.guid for k in keys if k.guid}),
        (Vacancy.url_key, {k.url for k in keys if k.url}),
        (Vacancy.fingerprint, {k.fingerprint for k in keys if k.fingerprint}),
    )

    def keep(row: Any) -> None:  # a Row of `columns`
        found[row.id] = dedupe.Existing(
            row.id,
            DedupeKeys(row.guid_key, row.url_key, row.fingerprint, row.title_key),
            row.content_hash,
        )
        owners[row.id] = row.source_id

    in_organisation = Vacancy.organisation_id == organisation_id
    values = sum(len(v) for _, v in wanted)
    if values > _CHUNK:
        # A large batch: reading the organisation's keys once costs less than many IN lists
        # (each a long statement to send and plan) unless the organisation holds far more.
        stored = session.scalar(select(func.count()).select_from(Vacancy).where(in_organisation))
        if (stored or 0) <= SCAN_FACTOR * values:
            guids, urls, fingerprints = (v for _, v in wanted)
            for row in session.execute(select(*columns).where(in_organisation)):
                if row.guid_key in guids or row.url_key in urls or row.fingerprint in fingerprints:
                    keep(row)
            return sorted(found.values(), key=lambda e: e.id), owners
    for column, chosen in wanted:
        for chunk in _chunks(sorted(chosen)):
            for row in session.execute(select(*columns).where(in_organisation, column.in_(chunk))):
                keep(row)
    return sorted(found.values(), key=lambda e: e.id), owners


def _by_external_id(
    items: Sequence[Item], existing: list[dedupe.Existing], owners: dict[int, int], source_id: int
) -> list[dedupe.Match]:
    """Matching for pushed items, whose external id is authoritative within their source: an
    item matches its own source's record with that id; otherwise the layered keys match it
    against other sources' records only (so two ids never merge into one record), and only a
    repeated id within the batch is a duplicate."""
    own = {e.keys.guid: e for e in existing if owners[e.id] == source_id and e.keys.guid}
    others = [e for e in existing if owners[e.id] != source_id]
    first: dict[str, int] = {}
    found: list[dedupe.Match] = []
    for index, item in enumerate(items):
        guid = item.keys.guid
        if guid is not None and guid in first:
            found.append(
                dedupe.Match(index, "duplicate", duplicate_of=first[guid], matched_on="guid")
            )
            continue
        if guid is not None:
            first[guid] = index
        record = own.get(guid) if guid is not None else None
        if record is not None:
            same = record.content_hash == item.content_hash
            outcome: dedupe.Outcome = "unchanged" if same else "update"
            found.append(dedupe.Match(index, outcome, existing_id=record.id, matched_on="guid"))
            continue
        found.append(replace(dedupe.match([item], others)[0], index=index))
    return found


def _reopens(
    status: str, stored: dt.datetime | None, incoming: dt.datetime | None, now: dt.datetime
) -> bool:
    """An expired or withdrawn vacancy listed again is open again when it has not closed:
    a withdrawn one if its closing time is unknown or later than now, an expired one only
    with a later closing date than the one it expired at."""
    if status == "open" or (incoming is not None and incoming <= now):
        return False
    if status == "withdrawn":
        return True
    return incoming is not None and (stored is None or incoming > stored)


def ingest(
    session: Session,
    source: VacancySource,
    items: Sequence[Item],
    now: dt.datetime,
    *,
    by_external_id: bool = False,
) -> IngestResult:
    """Insert new items, update changed ones, touch unchanged ones (see the module docstring).
    `by_external_id` is for pushed items (see `_by_external_id`)."""
    lock_organisation(session, source.organisation_id)
    keys = [_stored_keys(item.keys) for item in items]
    stored_items = [
        item if item.keys == k else replace(item, keys=k)
        for item, k in zip(items, keys, strict=True)
    ]
    existing, owners = candidates(session, source.organisation_id, keys)
    # A source's GUIDs that name other sources' records come first, so that a record's own
    # keys win where both exist.
    listed, listed_owners = listings(session, source.id, keys)
    existing = listed + existing
    owners.update(listed_owners)
    if by_external_id:
        matches = _by_external_id(stored_items, existing, owners, source.id)
    else:
        matches = dedupe.match(stored_items, existing)
    result = IngestResult(outcomes=[""] * len(items), ids=[0] * len(items))
    touched: list[int] = []
    changed: dict[int, int] = {}  # vacancy id -> index of the incoming item that changes it
    new: list[int] = []
    for m in matches:
        if m.outcome == "new":
            new.append(m.index)
        elif m.outcome == "duplicate":
            result.outcomes[m.index] = "duplicate"
        else:
            assert m.existing_id is not None
            if m.outcome == "update" and m.existing_id not in changed:
                changed[m.existing_id] = m.index
                result.outcomes[m.index] = "updated"
            else:
                touched.append(m.existing_id)
                result.outcomes[m.index] = "unchanged"
            result.ids[m.index] = m.existing_id
    _touch(session, touched, now, result)
    _update(session, source, stored_items, keys, changed, now, result)
    _insert(session, source, stored_items, keys, new, now, result)
    for m in matches:
        if m.outcome == "duplicate" and m.duplicate_of is not None:
            result.ids[m.index] = result.ids[m.duplicate_of]
    _remember_listings(session, source, keys, matches)
    return result


def lock_organisation(session: Session, organisation_id: int) -> None:
    """Serialise ingests into one organisation until the transaction ends (PostgreSQL; on
    SQLite every transaction of the app already holds the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(INGEST_LOCK, organisation_id)))


def listings(
    session: Session, source_id: int, keys: Sequence[DedupeKeys]
) -> tuple[list[dedupe.Existing], dict[int, int]]:
    """The records that this source's GUIDs in `keys` were found to name earlier, as
    `Existing` entries under those GUIDs (so that the GUID layer matches them), and the source
    of each record."""
    guids = sorted({k.guid for k in keys if k.guid})
    found: list[dedupe.Existing] = []
    owners: dict[int, int] = {}
    if not guids or not session.scalar(
        select(exists().where(VacancyListing.source_id == source_id))
    ):
        return found, owners
    columns = (VacancyListing.guid_key, Vacancy.id, Vacancy.source_id, Vacancy.title_key)
    for chunk in _chunks(guids):
        query = (
            select(*columns, Vacancy.content_hash)
            .join(Vacancy, Vacancy.id == VacancyListing.vacancy_id)
            .where(VacancyListing.source_id == source_id, VacancyListing.guid_key.in_(chunk))
        )
        for row in session.execute(query):
            keys_ = DedupeKeys(row.guid_key, None, None, row.title_key)
            found.append(dedupe.Existing(row.id, keys_, row.content_hash))
            owners[row.id] = row.source_id
    return found, owners


def _remember_listings(
    session: Session,
    source: VacancySource,
    keys: Sequence[DedupeKeys],
    matches: Sequence[dedupe.Match],
) -> None:
    """Remember this source's GUID for each item that landed on a record by its URL or
    fingerprint (a record held under other keys), unless the batch uses that GUID for
    different links."""
    links: dict[str, set[str | None]] = {}
    for k in keys:
        if k.guid is not None:
            links.setdefault(k.guid, set()).add(k.url)
    wanted: dict[str, int] = {}
    for m in matches:
        guid = keys[m.index].guid
        if m.existing_id is None or m.matched_on in (None, "guid") or guid is None:
            continue
        if len(links[guid]) == 1:
            wanted[guid] = m.existing_id
    guids = sorted(wanted)
    for chunk in _chunks(guids):
        session.execute(
            delete(VacancyListing).where(
                VacancyListing.source_id == source.id, VacancyListing.guid_key.in_(chunk)
            )
        )
    if guids:
        session.execute(
            insert(VacancyListing.__table__),  # type: ignore[arg-type]
            [{"source_id": source.id, "guid_key": g, "vacancy_id": wanted[g]} for g in guids],
        )


def _touch(session: Session, ids: list[int], now: dt.datetime, result: IngestResult) -> None:
    result.reopened += touch(session, ids, now)


def _with_ids(session: Session, ids: Iterable[int]) -> Iterable[ColumnElement[bool]]:
    """`Vacancy.id in ids` as conditions: on PostgreSQL one array parameter (psycopg prepares a
    statement with thousands of parameters slowly), elsewhere IN lists of ID_CHUNK ids."""
    unique = sorted(set(ids))
    if not unique:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield Vacancy.id == any_(literal(unique, ARRAY(Integer)))
        return
    for chunk in _chunks(unique, ID_CHUNK):
        yield Vacancy.id.in_(chunk)


def touch(session: Session, ids: Iterable[int], now: dt.datetime) -> int:
    """Seen again, unchanged: last seen now, no missed polls; a withdrawn vacancy that has not
    closed is open again (how many were reopened is returned)."""
    reopened = 0
    for chosen in _with_ids(session, ids):
        session.execute(
            update(Vacancy)
            .where(chosen)
            .values(last_seen_at=now, missing_polls=0)
            .execution_options(synchronize_session=False)
        )
        done = session.execute(
            update(Vacancy)
            .where(
                chosen,
                Vacancy.status == "withdrawn",
                or_(Vacancy.closes_at.is_(None), Vacancy.closes_at > now),
            )
            .values(status="open", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        reopened += done.rowcount or 0  # type: ignore[attr-defined]
    return reopened


def _update(
    session: Session,
    source: VacancySource,
    items: Sequence[Item],
    keys: Sequence[DedupeKeys],
    changed: dict[int, int],
    now: dt.datetime,
    result: IngestResult,
) -> None:
    if not changed:
        return
    ids = sorted(changed)
    stored: dict[int, tuple[int, str, dt.datetime | None]] = {}
    for chosen in _with_ids(session, ids):
        query = select(Vacancy.id, Vacancy.source_id, Vacancy.status, Vacancy.closes_at).where(
            chosen
        )
        for found in session.execute(query):
            stored[found.id] = (found.source_id, found.status, found.closes_at)
    rows: list[dict[str, object]] = []
    for vacancy_id in ids:
        index = changed[vacancy_id]
        source_id, status, closes_at = stored[vacancy_id]
        row = _row(items[index], keys[index])
        if source_id != source.id:
            # Another source's item: its content updates the record, but the keys the
            # record's own source matches on stay as they are.
            for name in ("guid_key", "url_key", "fingerprint", "title_key"):
                del row[name]
        row.update(id=vacancy_id, last_seen_at=now, updated_at=now, missing_polls=0)
        item_closes = items[index].closes_at
        if _reopens(status, closes_at, item_closes, now):
            row["status"] = "open"
            result.reopened += 1
        elif status == "open" and item_closes is not None and item_closes <= now:
            row["status"] = "expired"
        rows.append(row)
    session.execute(update(Vacancy), rows)


def _insert(
    session: Session,
    source: VacancySource,
    items: Sequence[Item],
    keys: Sequence[DedupeKeys],
    indexes: list[int],
    now: dt.datetime,
    result: IngestResult,
) -> None:
    # In batches, so that the bound parameters of a large feed are never all in memory at once.
    for batch in _chunks(indexes, INSERT_BATCH):
        _insert_batch(session, source, items, keys, batch, now, result)


def _insert_batch(
    session: Session,
    source: VacancySource,
    items: Sequence[Item],
    keys: Sequence[DedupeKeys],
    indexes: Sequence[int],
    now: dt.datetime,
    result: IngestResult,
) -> None:
    rows = []
    for index in indexes:
        item = items[index]
        row = _row(item, keys[index])
        closed = item.closes_at is not None and item.closes_at <= now
        row.update(
            organisation_id=source.organisation_id,
            source_id=source.id,
            status="expired" if closed else "open",
            missing_polls=0,
            first_seen_at=now,
            last_seen_at=now,
            updated_at=now,
        )
        rows.append(row)
    # A plain executemany, then the new ids read back in one query: RETURNING in parameter
    # order degrades to a statement per row (and quadratic result splicing) on SQLite, and on
    # PostgreSQL its multi-row statements take psycopg longer to prepare than the pipelined
    # executemany. Rows are told apart by their content hash; rows with equal hashes are equal
    # items, so their order is immaterial.
    before = session.scalar(select(func.max(Vacancy.id))) or 0
    session.execute(insert(Vacancy.__table__), rows)  # type: ignore[arg-type]
    hashes = {str(row["content_hash"]) for row in rows}
    by_hash: dict[str, list[int]] = {}
    query = (
        select(Vacancy.id, Vacancy.content_hash)
        .where(Vacancy.id > before, Vacancy.source_id == source.id, Vacancy.first_seen_at == now)
        .order_by(Vacancy.id)
    )
    for found in session.execute(query):
        if found.content_hash in hashes:
            by_hash.setdefault(found.content_hash, []).append(found.id)
    for index, row in zip(indexes, rows, strict=True):
        result.ids[index] = by_hash[str(row["content_hash"])].pop(0)
        result.outcomes[index] = "created"


def expire(session: Session, now: dt.datetime, organisation_id: int | None = None) -> list[int]:
    """Open vacancies whose closing time has come become 'expired'; their ids are returned."""
    query = select(Vacancy.id).where(
        Vacancy.status == "open", Vacancy.closes_at.is_not(None), Vacancy.closes_at <= now
    )
    if organisation_id is not None:
        query = query.where(Vacancy.organisation_id == organisation_id)
    ids = list(session.scalars(query.order_by(Vacancy.id)))
    for chunk in _chunks(ids):
        session.execute(
            update(Vacancy)
            .where(Vacancy.id.in_(chunk), Vacancy.status == "open")
            .values(status="expired", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


def withdraw_missing(session: Session, source: VacancySource, now: dt.datetime) -> list[int]:
    """After a good full poll of `source` (every listed item touched at `now`): its open
    vacancies not listed count one more missed poll, and those that missed
    `withdraw_after_polls` successive polls become 'withdrawn' (their ids are returned)."""
    session.execute(
        update(Vacancy)
        .where(
            Vacancy.source_id == source.id,
            Vacancy.status == "open",
            Vacancy.last_seen_at < now,
        )
        .values(missing_polls=Vacancy.missing_polls + 1)
        .execution_options(synchronize_session=False)
    )
    gone = select(Vacancy.id).where(
        Vacancy.source_id == source.id,
        Vacancy.status == "open",
        Vacancy.missing_polls >= source.withdraw_after_polls,
    )
    ids = list(session.scalars(gone.order_by(Vacancy.id)))
    for chunk in _chunks(ids):
        session.execute(
            update(Vacancy)
            .where(Vacancy.id.in_(chunk))
            .values(status="withdrawn", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


# --- reading --------------------------------------------------------------------------------


def get_vacancy(session: Session, organisation_id: int, vacancy_id: int) -> Vacancy:
    vacancy = session.get(Vacancy, vacancy_id)
    if vacancy is None or vacancy.organisation_id != organisation_id:
        raise NotFound("That vacancy does not exist.")
    return vacancy


def list_vacancies(
    session: Session,
    organisation_id: int,
    *,
    status: str = "open",
    source_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Vacancy], int]:
    """A page of the organisation's vacancies, newest first, and how many there are in all.
    `status` is one of VACANCY_STATUSES or 'all' (ValueError otherwise)."""
    if status != "all" and status not in VACANCY_STATUSES:
        raise ValueError(f"unknown status {status!r}: use open, expired, withdrawn or all")
    where = [Vacancy.organisation_id == organisation_id]
    if status != "all":
        where.append(Vacancy.status == status)
    if source_id is not None:
        where.append(Vacancy.source_id == source_id)
    total = session.scalar(select(func.count()).select_from(Vacancy).where(*where)) or 0
    newest = func.coalesce(Vacancy.posted_at, Vacancy.first_seen_at)
    query = (
        select(Vacancy)
        .options(selectinload(Vacancy.source))
        .where(*where)
        .order_by(newest.desc(), Vacancy.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query)), total
