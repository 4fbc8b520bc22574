"""CSV exports and JSON API results (Reed, Adzuna style, or a list of JSON-LD JobPostings).

CSV: read with `utf-8-sig` (Excel's BOM) and `newline=""` (quoted multi-line fields, CRLF);
every value stays a string (leading-zero ids survive); blank rows are skipped; a bad row is
reported with its line number and the rest kept. Columns are matched by name, ignoring case,
spaces, `-` and `_`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from campaign.vacancies.jsonld import postings_from_data
from campaign.vacancies.records import ItemError, ParseResult, RawItem
from campaign.vacancies.urls import absolute_url

_COLUMNS = {
    "guid": ("id", "externalid", "reference", "referencenumber", "jobid", "vacancyid", "adref"),
    "title": ("title", "jobtitle", "vacancytitle", "role", "position"),
    "link": ("url", "link", "joburl", "applyurl", "redirecturl", "vacancyurl"),
    "description": ("description", "jobdescription", "summary", "details"),
    "employer": ("employer", "employername", "company", "companyname", "organisation",
                 "companydisplayname", "employerprofilename"),
    "location": ("location", "locationname", "locationdisplayname", "city", "town"),
    "salary": ("salary", "salarytext", "pay"),
    "posted": ("posted", "dateposted", "posteddate", "date", "created", "publishdate"),
    "closing": ("closingdate", "closes", "deadline", "expirationdate", "expirydate",
                "validthrough"),
    "minimum": ("salarymin", "minimumsalary", "minsalary"),
    "maximum": ("salarymax", "maximumsalary", "maxsalary"),
    "currency": ("currency", "salarycurrency"),
    "predicted": ("salaryispredicted",),
}  # fmt: skip
MAX_ROWS = 100_000


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _pick(row: Mapping[str, str], name: str) -> str:
    return next((row[k].strip() for k in _COLUMNS[name] if (row.get(k) or "").strip()), "")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")) if text.strip() else None
    except InvalidOperation:
        return None


def _item(position: int, row: Mapping[str, str], base_url: str) -> RawItem:
    predicted = _pick(row, "predicted").lower() in ("1", "true", "yes")
    return RawItem(
        position=position,
        guid=_pick(row, "guid"),
        title=_pick(row, "title"),
        title_is_html=True,
        link=_pick(row, "link"),
        base_url=base_url,
        description_html=_pick(row, "description"),
        employer=_pick(row, "employer"),
        location=_pick(row, "location"),
        salary_text=_pick(row, "salary"),
        salary_min=_decimal(_pick(row, "minimum")),
        salary_max=_decimal(_pick(row, "maximum")),
        salary_currency=_pick(row, "currency").upper(),
        salary_predicted=predicted,
        posted_text=_pick(row, "posted"),
        closing_text=_pick(row, "closing"),
    )


def _problem(item: RawItem, base_url: str) -> str | None:
    if not item.title:
        return "no title"
    if not item.link:
        return "no link"
    if absolute_url(item.link, base_url) is None:
        return f"link {item.link[:100]!r} is not an http(s) URL"
    return None


def parse_csv(body: bytes, *, source_url: str = "") -> ParseResult:
    """Parse a CSV export; bad rows are reported by line number."""
    result = ParseResult("csv")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("windows-1252", errors="replace")
        result.warnings.append("the file is not UTF-8; read as windows-1252")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [_norm(h) for h in next(reader)]
    except StopIteration:
        return ParseResult("csv", error="the CSV file is empty")
    except csv.Error as exc:
        return ParseResult("csv", error=f"the CSV header cannot be read: {exc}")
    if not {"title", "jobtitle", "vacancytitle", "role", "position"} & set(header):
        return ParseResult("csv", error="the CSV header has no title column")
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(ItemError(start, f"line {start}: {exc}"))
            continue
        if not any(c.strip() for c in cells):
            continue  # blank and trailing rows
        if len(result.items) + len(result.errors) >= MAX_ROWS:
            result.errors.append(ItemError(start, f"line {start}: more than {MAX_ROWS} rows"))
            break
        if len(cells) > len(header):
            message = f"line {start}: {len(cells)} cells but the header has {len(header)}"
            result.errors.append(ItemError(start, message))
            continue
        item = _item(start, dict(zip(header, cells, strict=False)), source_url)
        problem = _problem(item, source_url)
        if problem:
            result.errors.append(ItemError(start, f"line {start}: {problem}"))
            continue
        result.items.append(item)
    return result


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested JSON objects as flat string fields: {"company": {"display_name": x}} ->
    companydisplayname. Keys starting with `__` (Adzuna's `__CLASS__`) are noise."""
    flat: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).startswith("__"):
                continue
            flat.update(_flatten(inner, prefix + _norm(str(key))))
    elif isinstance(value, list):
        texts = [t for t in (_flatten(v, "").get("", "") for v in value) if t]
        if texts:
            flat[prefix] = ", ".join(texts)
    elif value is not None and value != "":
        flat[prefix] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


def parse_json(body: bytes, *, source_url: str = "") -> ParseResult:
    """A JSON API response: a list of jobs, or an object holding one under `results`/`jobs`
    /`items`/`data`; JSON-LD JobPostings are read as on a page."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return ParseResult("json", error=f"the document is not valid JSON: {exc}")
    except RecursionError:
        return ParseResult("json", error="the document is not valid JSON: nested too deeply")
    try:
        return _json_items(data, source_url)
    except RecursionError:
        return ParseResult("json", error="the document is nested too deeply to read")


def _json_items(data: Any, source_url: str) -> ParseResult:
    result = ParseResult("json")
    if isinstance(data, dict) and ("@type" in data or "@graph" in data):
        postings_from_data([data], source_url, result)
        return result
    if isinstance(data, dict):
        data = next(
            (data[k] for k in ("results", "jobs", "items", "data", "vacancies") if k in data), None
        )
    if not isinstance(data, list):
        return ParseResult("json", error="no list of jobs found (expected results, jobs or items)")
    for position, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            result.errors.append(ItemError(position, f"item {position} is not an object"))
            continue
        item = _item(position, _flatten(entry), source_url)
        problem = _problem(item, source_url)
        if problem:
            result.errors.append(ItemError(position, f"item {position}: {problem}"))
            continue
        result.items.append(item)
    return result
