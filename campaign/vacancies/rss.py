"""RSS 2.0 / RSS 1.0 / Atom through feedparser, given bytes (never a URL).

Item links are resolved against xml:base or the source URL: when the document uses xml:base,
the source URL goes in as the content-location header and feedparser resolves them; otherwise
each item carries the source URL as its base and the normaliser resolves them (feedparser
tracking a base costs a URL join per element). feedparser's own sanitiser and its resolution of
links inside HTML are switched off: nh3 sanitises and `text.sanitise_html` resolves those links,
faster.

feedparser is lenient: on a malformed feed it sets `bozo` and returns what it could salvage,
silently dropping items. We refuse such a feed with the parser's message instead. Encoding
overrides and a missing content type are only warnings. Documents that declare entities are
refused before feedparser sees them (billion laughs, external entities).
"""

from __future__ import annotations

import re
from typing import Any
from xml.parsers import expat

import feedparser

from campaign.vacancies.jobxml import fix_encoding
from campaign.vacancies.records import ParseResult, RawItem

FORMAT = "rss"
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# xml:base="..." (or base=, which feedparser also honours), searched in the lower-cased body;
# a literal start keeps the scan fast, and a false hit ("database=") only costs the slower path.
_BASE_ATTRIBUTE = re.compile(rb"base\s*=")
# Custom-namespace keys appear as lower-cased "prefix_name"; match on the name part.
_SUFFIXES = {
    "employer": ("_employer", "_company", "_organisation", "_organization", "_hiringorganization"),
    "location": ("_location", "_city"),
    "salary": ("_salary",),
    "closing": (
        "_closingdate", "_closing_date", "_closes", "_closingdatetime", "_deadline",
        "_expirationdate", "_expirydate", "_validthrough",
    ),
    "guid": ("_referencenumber", "_reference", "_jobid", "_vacancyid"),
}  # fmt: skip
_HARMLESS = ("CharacterEncodingOverride", "NonXMLContentType")


def _customs(entry: dict[str, Any]) -> dict[str, str]:
    """Each custom field's value: the first non-blank string under a key with its suffix (one
    pass over the entry's keys)."""
    found: dict[str, str] = {}
    for key, value in entry.items():
        if "_" not in key or not isinstance(value, str):
            continue
        for name, suffixes in _SUFFIXES.items():
            if name not in found and key.endswith(suffixes) and value.strip():
                found[name] = value.strip()
    return found


def refuse_entities(body: bytes) -> str | None:
    """A clear error if the document declares entities (never parsed, never expanded)."""
    if _ENTITY_DECLARATION.search(body, 0, 1 << 20) is not None:
        return (
            "refused: the document declares XML entities (a possible entity-expansion or "
            "external-entity attack); vacancy feeds never need them"
        )
    return None


def malformed(body: bytes) -> str | None:
    """expat's verdict on well-formedness, in a fraction of feedparser's time.

    feedparser answers a malformed document by re-parsing it with its slow lenient parser
    (seconds on a few MB of garbage) and then we refuse it anyway, so refuse first. The bytes
    go through the same declaration repair as job XML, so a mis-declared encoding is not
    mistaken for malformed XML; UTF-16 documents are left to feedparser.
    """
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return None
    fixed, _ = fix_encoding(body)
    parser = expat.ParserCreate()
    try:
        parser.Parse(fixed, True)
    except expat.ExpatError as exc:
        problem = expat.ErrorString(exc.code)
        return (
            f"the feed is not well-formed XML: {problem} (line {exc.lineno}, column {exc.offset})"
        )
    except LookupError as exc:  # a declared encoding Python does not know ("bogus", "mac")
        return f"the feed declares a character encoding that cannot be read ({exc})"
    return None


def parse_rss(body: bytes, *, content_type: str = "", source_url: str = "") -> ParseResult:
    """Parse RSS/Atom bytes; relative links resolve against xml:base or `source_url`."""
    refused = refuse_entities(body) or malformed(body)
    if refused:
        return ParseResult(FORMAT, error=refused)
    headers = {"content-type": content_type or "application/xml"}
    if source_url and _BASE_ATTRIBUTE.search(body.lower()) is not None:
        # Only a document with xml:base needs feedparser to track the base URL: it then joins
        # it with every element's. Without one, the base of every item is the source URL,
        # against which `_item` sets links to be resolved, with the same result.
        headers["content-location"] = source_url
    parsed = feedparser.parse(
        body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    result = ParseResult(FORMAT)
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        name = type(exc).__name__
        if name not in _HARMLESS:
            line = getattr(exc, "getLineNumber", lambda: None)()
            where = f" (line {line})" if line else ""
            return ParseResult(FORMAT, error=f"the feed is not well-formed XML: {exc}{where}")
        if name == "CharacterEncodingOverride":
            result.warnings.append(f"encoding: {exc}")
    if not parsed.get("version") and not parsed.entries:
        return ParseResult(FORMAT, error="not an RSS or Atom feed: no channel or feed element")
    for position, entry in enumerate(parsed.entries, start=1):
        result.items.append(_item(position, entry, source_url))
    return result


def _item(position: int, entry: Any, source_url: str) -> RawItem:
    # The entry is a FeedParserDict; none of the keys read here is one of its aliases, so a
    # plain dict copy (whose look-ups are several times faster) gives the same values.
    fields: dict[str, Any] = dict(entry)
    get = fields.get
    custom = _customs(fields)
    title_detail = get("title_detail") or {}
    content = get("content") or []
    description = content[0].get("value", "") if content else get("summary", "")
    link = get("link", "")
    if not link and get("guidislink"):
        link = get("id", "")
    guid = custom.get("guid") or get("id", "")
    return RawItem(
        position=position,
        guid=guid.strip(),
        title=get("title", "").strip(),
        title_is_html=title_detail.get("type", "text/plain") != "text/plain",
        link=link.strip(),
        base_url=title_detail.get("base") or source_url,
        description_html=description.strip(),
        employer=custom.get("employer") or (get("author") or "").strip(),
        location=custom.get("location", ""),
        salary_text=custom.get("salary", ""),
        posted_text=(get("published") or get("updated") or "").strip(),
        closing_text=custom.get("closing", ""),
        tags=tuple(t.get("term", "") for t in get("tags") or () if t.get("term")),
    )
