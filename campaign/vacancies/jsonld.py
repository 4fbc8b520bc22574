"""schema.org JobPosting JSON-LD in job pages: every `<script>` block parsed on its own.

One broken block never hides the others (extruct drops the whole page's JSON-LD). Blocks are
read leniently: HTML-comment and `// <![CDATA[` wrappers, a trailing `;`, control characters in
strings and a wholly entity-escaped block (`{&quot;@type&quot;...`) are repaired. Shapes handled:
`@graph`, top-level arrays, list-valued `@type`, `@id` references, string or object
`hiringOrganization`, `jobLocation` as a Place, a list or a string, `baseSalary` as a
MonetaryAmount, a number or a string, Teaching Vacancies' `salary`, and relative `url`s.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from campaign.vacancies.records import ItemError, ParseResult, RawItem
from campaign.vacancies.urls import absolute_url

FORMAT = "jsonld"
_WRAPPERS = re.compile(
    r"^\s*(?:<!--|//\s*<!\[CDATA\[|/\*\s*<!\[CDATA\[\s*\*/)|(?://\s*\]\]>|/\*\s*\]\]>\s*\*/|-->)\s*$"
)
_PERIODS = {"HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month", "YEAR": "year"}


def _loads(text: str) -> Any:
    """json.loads, then again after the repairs real pages need."""
    try:
        return json.loads(text, strict=False)
    except ValueError as first:
        repaired = _WRAPPERS.sub("", text.strip()).strip().rstrip(";").strip()
        if repaired.startswith(("{&quot;", "[&quot;", "{ &quot;")):
            repaired = html.unescape(repaired)
        try:
            return json.loads(repaired, strict=False)
        except ValueError:
            raise first from None


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).rsplit("/", 1)[-1] for k in kinds}


def _nodes(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for entry in data:
            yield from _nodes(entry)
    elif isinstance(data, dict):
        yield data
        if isinstance(data.get("@graph"), list):
            yield from _nodes(data["@graph"])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("value") or value.get("@value"))
    return str(value).strip()


def _address(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if not isinstance(value, dict):
        return ""
    parts = [
        _text(value.get(k))
        for k in ("addressLocality", "addressRegion", "postalCode", "addressCountry")
    ]
    return ", ".join(dict.fromkeys(p for p in parts if p)) or _text(value.get("streetAddress"))


def _location(value: Any, refs: dict[str, dict[str, Any]]) -> str:
    places = value if isinstance(value, list) else [value]
    found: list[str] = []
    for place in places:
        place = _deref(place, refs)
        if isinstance(place, str):
            found.append(place.strip())
        elif isinstance(place, dict):
            found.append(_address(_deref(place.get("address"), refs)) or _text(place.get("name")))
    return "; ".join(dict.fromkeys(f for f in found if f))


def _deref(value: Any, refs: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict) and set(value) == {"@id"}:
        return refs.get(str(value["@id"]), value)
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return Decimal(str(value).replace(",", ""))
    except InvalidOperation:
        return None


def _salary(posting: dict[str, Any]) -> tuple[str, Decimal | None, Decimal | None, str, str]:
    """(text, min, max, currency, period) from baseSalary or Teaching Vacancies' `salary`."""
    value = posting.get("baseSalary", posting.get("salary"))
    if isinstance(value, str):
        return value, None, None, "", ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = _same(value)
        return "", low, high, "", ""
    if not isinstance(value, dict):
        return "", None, None, "", ""
    currency = _text(value.get("currency") or value.get("salaryCurrency")).upper()
    amount = value.get("value", value)
    if isinstance(amount, str) and _number(amount) is None:
        return amount, None, None, currency, ""
    if not isinstance(amount, dict):
        low, high = _same(amount)
        return "", low, high, currency, ""
    low = _number(amount.get("minValue", amount.get("value")))
    high = _number(amount.get("maxValue", amount.get("value")))
    period = _PERIODS.get(_text(amount.get("unitText") or value.get("unitText")).upper(), "")
    return "", low, high, currency, period


def _same(value: Any) -> tuple[Decimal | None, Decimal | None]:
    number = _number(value)
    return number, number


def _identifier(value: Any) -> str:
    if isinstance(value, dict):
        return _text(value.get("value") or value.get("@id") or value.get("name"))
    return _text(value)


def _posting(position: int, node: dict[str, Any], refs: dict[str, Any], base: str) -> RawItem:
    text, low, high, currency, period = _salary(node)
    location = _location(node.get("jobLocation"), refs)
    if not location and "TELECOMMUTE" in _text(node.get("jobLocationType")).upper():
        location = "Remote"
    return RawItem(
        position=position,
        guid=_identifier(node.get("identifier")) or _text(node.get("@id")),
        title=_text(node.get("title") or node.get("name")),
        title_is_html=True,
        link=_text(node.get("url")),
        base_url=base,
        description_html=_text(node.get("description")),
        employer=_text(_deref(node.get("hiringOrganization"), refs)),
        location=location,
        salary_text=text,
        salary_min=low,
        salary_max=high,
        salary_currency=currency,
        salary_period=period,
        posted_text=_text(node.get("datePosted")),
        closing_text=_text(node.get("validThrough") or node.get("dateClosing")),
        tags=tuple(t for t in [_text(node.get("employmentType"))] if t),
    )


def postings_from_data(blocks: list[Any], base: str, result: ParseResult) -> None:
    """Append every JobPosting found in already-decoded JSON-LD blocks to `result.items`."""
    nodes = [n for block in blocks for n in _nodes(block)]
    refs = {str(n["@id"]): n for n in nodes if "@id" in n and len(n) > 1}
    for node in nodes:
        if "JobPosting" in _types(node):
            result.items.append(_posting(len(result.items) + 1, node, refs, base))


_SCRIPT_OPEN = re.compile(r"<script\b([^>]{0,4000})>", re.IGNORECASE)
_ATTR = r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"""
_TYPE = re.compile(r"\btype" + _ATTR, re.IGNORECASE)
_BASE = re.compile(r"<base\b[^>]{0,4000}?\bhref" + _ATTR, re.IGNORECASE)


def _value(m: re.Match[str] | None) -> str:
    if m is None:
        return ""
    return html.unescape(next((g for g in m.groups() if g is not None), "")).strip()


def _scripts(page: str) -> tuple[list[str], str]:
    """The JSON-LD script blocks and the <base href>, by a single linear scan (the stdlib
    HTMLParser goes quadratic on hostile pages such as "<a<a<a...")."""
    lower = page.lower()
    blocks: list[str] = []
    position = 0
    while (m := _SCRIPT_OPEN.search(page, position)) is not None:
        end = lower.find("</script", m.end())
        end = len(page) if end < 0 else end
        kind = _value(_TYPE.search(m.group(1))).split(";", 1)[0].strip().lower()
        if kind == "application/ld+json":
            blocks.append(page[m.end() : end])
        position = end
    return blocks, _value(_BASE.search(page))


def _decode(body: bytes) -> str:
    head = body[:4096].lower()
    m = re.search(rb"<meta[^>]+charset=[\"']?([a-z0-9_-]+)", head)
    encoding = m.group(1).decode() if m else "utf-8"
    try:
        return body.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def parse_jsonld_html(body: bytes, *, source_url: str = "") -> ParseResult:
    """Every JobPosting on an HTML page; a broken block is reported by its number."""
    result = ParseResult(FORMAT)
    texts, base_href = _scripts(_decode(body))
    base = (absolute_url(base_href, source_url) if base_href else None) or source_url
    blocks: list[Any] = []
    for number, text in enumerate(texts, start=1):
        try:
            blocks.append(_loads(text))
        except RecursionError:
            result.errors.append(ItemError(number, f"JSON-LD block {number} is nested too deeply"))
        except ValueError as exc:
            message = f"JSON-LD block {number} is not valid JSON: {exc}"
            result.errors.append(ItemError(number, message))
    if not texts:
        result.warnings.append("no JSON-LD blocks on the page")
    try:
        postings_from_data(blocks, base, result)
    except RecursionError:
        return ParseResult(FORMAT, error="the page's JSON-LD is nested too deeply to read")
    if texts and not result.items and not result.errors:
        result.warnings.append("no JobPosting in the page's JSON-LD")
    return result
