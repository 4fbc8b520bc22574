"""RawItem -> Vacancy: one record shape whatever the source format.

Title decoded exactly once and collapsed; URL absolute; description sanitised (nh3) with a
plain-text twin; dates aware UTC (organisation timezone for zone-less and date-only values);
closing date from the structured field, else from a phrase in the text, at the end of the day
when no time is given; salary parsed only when unambiguous, with the original text kept.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from campaign.vacancies import dates, salary
from campaign.vacancies.dedupe import content_hash, keys_for
from campaign.vacancies.records import (
    FLAG_INVALID_DATE,
    FLAG_INVALID_URL,
    FLAG_SALARY_MISSING,
    FLAG_SALARY_PREDICTED,
    RawItem,
    Vacancy,
)
from campaign.vacancies.text import collapse, html_to_line, html_to_text, sanitise_html
from campaign.vacancies.urls import absolute_url

_LABELLED = re.compile(
    r"^\s*(?P<label>salary|pay|employer|organisation|company|location|based\s+at)\s*[:\-–]\s*"
    r"(?P<value>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SALARY_IN_TEXT = re.compile(
    r"\b(?:salary|pay)\b\s*:?\s*((?:[£$€]|gbp|eur|usd)\s?\d[^\n]*?)(?:\.\s|\n|$)", re.IGNORECASE
)
_LABELS = {
    "salary": "salary", "pay": "salary", "employer": "employer", "organisation": "employer",
    "company": "employer", "location": "location", "based at": "location",
}  # fmt: skip


class Memo:
    """Results of the pure, string-keyed steps within one document: feeds repeat the same
    date strings, closing-date phrases and salary texts across many items. One memo per
    document (or batch), so nothing is kept between polls."""

    def __init__(self) -> None:
        self._dates: dict[tuple[str, str, str, bool], dates.ParsedDate] = {}
        self._salaries: dict[str, salary.Salary] = {}
        self.closing_windows: dict[tuple[str, str], dates.ParsedDate | None] = {}

    def parse_date(
        self, text: str, tz: ZoneInfo, *, label: str, end_of_day: bool = False
    ) -> dates.ParsedDate:
        key = (text, tz.key, label, end_of_day)
        found = self._dates.get(key)
        if found is None:
            found = self._dates[key] = dates.parse_date(
                text, tz, label=label, end_of_day=end_of_day
            )
        return found

    def parse_salary(self, text: str) -> salary.Salary:
        found = self._salaries.get(text)
        if found is None:
            found = self._salaries[text] = salary.parse_salary(text)
        return found


def _labelled(text: str) -> dict[str, str]:
    """Labelled lines in a description ("Salary: £x to £y", "Location: Leeds"), first wins."""
    found: dict[str, str] = {}
    for m in _LABELLED.finditer(text):
        found.setdefault(_LABELS[" ".join(m.group("label").lower().split())], m.group("value"))
    return found


def _employer_from_first_line(text: str) -> str:
    """jobs.ac.uk's layout: "Employer - Department" on the line before "Salary: ..."."""
    lines = text.split("\n")
    if len(lines) >= 2 and lines[1].lower().startswith("salary"):
        return lines[0].split(" - ", 1)[0].strip()
    return ""


def normalise(
    item: RawItem,
    *,
    tz: ZoneInfo | str,
    now: dt.datetime,
    source_url: str = "",
    scope: str = "",
    memo: Memo | None = None,
) -> Vacancy:
    """Normalise one parsed item. `tz` is the organisation's timezone (ZoneInfo or IANA name,
    ValueError if unknown); `now` is the first-seen time for items without any date. Pass one
    `Memo` for all the items of a document to parse each repeated string once."""
    if isinstance(tz, str):
        tz = dates.timezone(tz)
    if memo is None:
        memo = Memo()
    warnings: list[str] = []
    flags: set[str] = set()
    title = html_to_line(item.title) if item.title_is_html else collapse(item.title)
    base = item.base_url or source_url
    description_html = sanitise_html(item.description_html, base) if item.description_html else ""
    description_text = html_to_text(description_html) if description_html else ""
    labelled = _labelled(description_text) if description_text else {}
    employer = collapse(item.employer) or collapse(labelled.get("employer", ""))
    if not employer and description_text:
        employer = _employer_from_first_line(description_text)
    location = collapse(item.location) or collapse(labelled.get("location", ""))

    url = absolute_url(item.link, base) or ""
    if not url:
        flags.add(FLAG_INVALID_URL)
        shown = collapse(item.link)[:200]
        warnings.append(f"link {shown!r} is not an http(s) URL" if shown else "item has no link")

    posted_at = item.posted_at
    if posted_at is None and item.posted_text:
        parsed = memo.parse_date(item.posted_text, tz, label="posted date")
        posted_at = parsed.value
        if parsed.warning:
            warnings.append(parsed.warning)
            flags.add(FLAG_INVALID_DATE)
    if posted_at is None:
        posted_at = now  # no item date at all: first seen now

    closes_at, closing_phrase = _closing(item, description_text, tz, warnings, flags, memo)
    if closes_at is not None and closes_at < now:
        warnings.append(f"closing date {closes_at:%Y-%m-%d %H:%M} UTC has already passed")

    salary_text = collapse(item.salary_text) or collapse(labelled.get("salary", ""))
    if not salary_text and description_text:
        in_text = _SALARY_IN_TEXT.search(description_text)
        salary_text = collapse(in_text.group(1)) if in_text else ""
    minimum, maximum = item.salary_min, item.salary_max
    currency, period = item.salary_currency or None, item.salary_period or None
    if item.salary_predicted:
        flags.add(FLAG_SALARY_PREDICTED)  # the aggregator's estimate, not the employer's
        minimum = maximum = None
        currency = period = None
    if minimum is not None or maximum is not None:
        if salary_text:
            flags |= memo.parse_salary(salary_text).flags - {FLAG_SALARY_MISSING}
    else:
        parsed_salary = memo.parse_salary(salary_text)
        flags |= parsed_salary.flags
        minimum, maximum = parsed_salary.minimum, parsed_salary.maximum
        currency = currency or parsed_salary.currency
        period = period or parsed_salary.period

    return Vacancy(
        position=item.position,
        external_id=collapse(item.guid),
        title=title,
        employer=employer,
        location=location,
        url=url,
        description_html=description_html,
        description_text=description_text,
        posted_at=posted_at,
        closes_at=closes_at,
        closing_phrase=closing_phrase,
        salary_text=salary_text,
        salary_min=minimum,
        salary_max=maximum,
        salary_currency=currency,
        salary_period=period,
        flags=frozenset(flags),
        warnings=warnings,
        keys=keys_for(
            guid=item.guid, url=url, employer=employer, title=title, location=location, scope=scope
        ),
        content_hash=content_hash(item),
        tags=tuple(dict.fromkeys(c for t in item.tags for p in t.split(",") if (c := collapse(p)))),
    )


def _closing(
    item: RawItem, text: str, tz: ZoneInfo, warnings: list[str], flags: set[str], memo: Memo
) -> tuple[dt.datetime | None, str]:
    if item.closing_text.strip():
        parsed = memo.parse_date(item.closing_text, tz, label="closing date", end_of_day=True)
        if parsed.warning:
            warnings.append(parsed.warning)
            flags.add(FLAG_INVALID_DATE)
        if parsed.value is not None or "impossible" in (parsed.warning or ""):
            return parsed.value, ""
    found, phrase = dates.closing_from_text(text, tz, memo.closing_windows) if text else (None, "")
    if found is None:
        return None, ""
    if found.warning:
        warnings.append(found.warning)
        flags.add(FLAG_INVALID_DATE)
    return found.value, phrase


def normalise_all(
    items: Iterable[RawItem],
    *,
    tz: ZoneInfo | str,
    now: dt.datetime,
    source_url: str = "",
    scope: str = "",
    skip_hashes: frozenset[str] = frozenset(),
) -> list[Vacancy]:
    """Normalise a batch; items whose content hash is in `skip_hashes` (unchanged since the
    last poll) are left out without being normalised."""
    memo = Memo()
    return [
        normalise(item, tz=tz, now=now, source_url=source_url, scope=scope, memo=memo)
        for item in items
        if not skip_hashes or content_hash(item) not in skip_hashes
    ]
