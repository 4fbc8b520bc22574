"""Job XML of the Indeed kind (`<source><job>`) and its cousins, through defusedxml.

Covered shapes: Indeed / ZipRecruiter / Jobrapido / LinkedIn / Recruitee (`<source><job>`),
Careerjet (`<jobs><job>` with a nested `<location>`), Personio (`<workzag-jobs><position>` with
HTML in `jobDescriptions`), XING (`<feed><postings><posting>`) and vacancy lists such as
Oxford's or DWP's (`<vacancies><vacancy>`). Fields are looked up by a list of names per field
(case, `-` and `_` ignored), so a new board usually needs a name added, not a parser.

DTDs, entity declarations and external references are refused with a clear error. The XML
declaration is honoured; a declaration that is wrong (UTF-8 declared, windows-1252 bytes, or
the reverse) is corrected with a warning.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET  # ParseError and Element types; parsing is defusedxml's
from collections.abc import Iterator
from urllib.parse import urlsplit

import defusedxml
import defusedxml.ElementTree as SafeET

from campaign.vacancies.records import ItemError, ParseResult, RawItem

FORMAT = "jobxml"
ITEM_TAGS = frozenset({"job", "position", "posting", "vacancy"})
_FIELDS = {
    "guid": (
        "referencenumber", "partnerjobid", "apijobid", "reference", "jobid", "vacancyid",
        "vacancyrefcode", "id", "guid", "requisitionid",
    ),
    "title": ("title", "jobtitle", "vacancytitle", "name", "positiontitle"),
    "link": ("url", "link", "joburl", "applyurl", "applicationurl", "vacancyurl", "trackingurl"),
    "description": ("description", "jobdescriptions", "jobdescription", "summary", "details"),
    "employer": (
        "company", "companyname", "employer", "employername", "hiringorganization",
        "organisation", "organization", "subcompany", "sourcename",
    ),
    "location": ("location", "locationname", "office", "city"),
    "salary": ("salary", "salarytext", "pay", "salarydescription"),
    "posted": ("date", "publishdate", "dateposted", "createdat", "opens", "posted", "pubdate"),
    "closing": (
        "expirationdate", "expirydate", "closes", "closingdate", "validthrough",
        "vacancyexpiry", "deadline", "enddate",
    ),
    "tags": ("category", "jobtype", "employmenttype", "remotetype"),
}  # fmt: skip
_ADDRESS = ("city", "state", "region", "postalcode", "country")
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_SINGLE_BYTE = {"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "us-ascii", "ascii"}


def _key(tag: str) -> str:
    local = tag.rsplit("}", 1)[-1]
    return local.lower().replace("-", "").replace("_", "")


def fix_encoding(body: bytes) -> tuple[bytes, list[str]]:
    """UTF-8 bytes with a matching declaration, and a warning when the declaration was wrong."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    m = _DECLARATION.match(body)
    declared = m.group(1).decode().lower() if m else "utf-8"
    try:
        text = body.decode(declared)
    except LookupError:
        return body, [f"unknown encoding {declared!r} declared; read as UTF-8"]
    except UnicodeDecodeError:
        text = body.decode("windows-1252", errors="replace")
        warning = f"the document declares {declared} but is not; read as windows-1252"
        return _redeclare(text, m is not None), [warning]
    if declared in _SINGLE_BYTE and re.search(rb"[\xc2-\xf4][\x80-\xbf]", body):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            warning = f"the document declares {declared} but is UTF-8; read as UTF-8"
            return _redeclare(text, True), [warning]
    return (_redeclare(text, True), []) if m and declared != "utf-8" else (body, [])


def _redeclare(text: str, declared: bool) -> bytes:
    if declared:
        text = re.sub(r"^\s*<\?xml[^>]*\?>", '<?xml version="1.0" encoding="utf-8"?>', text)
    return text.encode("utf-8")


def _text(element: ET.Element) -> str:
    """An element's text; for one with children, the leaf texts (joined with ", ")."""
    if len(element) == 0:
        return (element.text or "").strip()
    if _key(element.tag) == "jobdescriptions":  # Personio: named HTML sections
        parts = []
        for section in element:
            fields = {_key(c.tag): (c.text or "").strip() for c in section}
            if fields.get("name"):
                parts.append(f"<h3>{html.escape(fields['name'])}</h3>")
            parts.append(fields.get("value", ""))
        return "\n".join(p for p in parts if p)
    leaves = [(leaf.text or "").strip() for leaf in element.iter() if len(leaf) == 0]
    return ", ".join(leaf for leaf in leaves if leaf)


def _fields(element: ET.Element) -> dict[str, str]:
    found: dict[str, str] = {_key(name): value.strip() for name, value in element.attrib.items()}
    for child in element:
        key = _key(child.tag)
        value = _text(child)
        if value and key not in found:
            found[key] = value
    return found


def _first(fields: dict[str, str], name: str) -> str:
    return next((fields[k] for k in _FIELDS[name] if fields.get(k)), "")


def _personio_link(guid: str, base_url: str) -> str:
    """Personio positions carry no URL; their page is /job/<id> on the company's jobs host."""
    host = urlsplit(base_url).hostname or ""
    if guid and host.endswith((".jobs.personio.de", ".jobs.personio.com")):
        return f"https://{host}/job/{guid}"
    return ""


def _item(position: int, fields: dict[str, str], base_url: str) -> RawItem:
    location = _first(fields, "location")
    if not location or location == fields.get("city"):
        location = ", ".join(fields[k] for k in _ADDRESS if fields.get(k)) or location
    if fields.get("postalcode") and not fields.get("city") and not _first(fields, "location"):
        location = fields["postalcode"]  # ZipRecruiter: the postcode is the preferred field
    return RawItem(
        position=position,
        guid=_first(fields, "guid"),
        title=_first(fields, "title"),
        title_is_html=True,  # entities decoded once after XML parsing (CDATA `&amp;` etc.)
        link=_first(fields, "link") or _personio_link(_first(fields, "guid"), base_url),
        base_url=base_url,
        description_html=_first(fields, "description"),
        employer=_first(fields, "employer"),
        location=location,
        salary_text=_first(fields, "salary"),
        posted_text=_first(fields, "posted"),
        closing_text=_first(fields, "closing"),
        tags=tuple(fields[k] for k in _FIELDS["tags"] if fields.get(k)),
    )


def _items(body: bytes) -> Iterator[ET.Element]:
    stack: list[str] = []
    for event, element in SafeET.iterparse(
        io.BytesIO(body), events=("start", "end"), forbid_dtd=True
    ):
        key = _key(element.tag)
        if event == "start":
            stack.append(key)
            continue
        stack.pop()
        if key in ITEM_TAGS and not any(k in ITEM_TAGS for k in stack):
            yield element
            element.clear()  # stream: finished items do not pile up in memory


def parse_jobxml(body: bytes, *, source_url: str = "") -> ParseResult:
    """Parse a job-XML document; items without a title or a link are reported by position."""
    fixed, warnings = fix_encoding(body)
    result = ParseResult(FORMAT, warnings=warnings)
    position = 0
    try:
        for element in _items(fixed):
            position += 1
            fields = _fields(element)
            item = _item(position, fields, source_url)
            if not item.title or not (item.link or item.guid):
                missing = "title" if not item.title else "link or reference"
                result.errors.append(ItemError(position, f"job {position} has no {missing}"))
                continue
            result.items.append(item)
    except defusedxml.DTDForbidden:
        return ParseResult(
            FORMAT, error="refused: the document has a DTD (DOCTYPE); job feeds never need one"
        )
    except defusedxml.EntitiesForbidden:
        return ParseResult(
            FORMAT,
            error="refused: the document declares XML entities (possible entity expansion)",
        )
    except defusedxml.ExternalReferenceForbidden:
        return ParseResult(FORMAT, error="refused: the document references an external entity")
    except ET.ParseError as exc:
        return ParseResult(FORMAT, error=f"the document is not well-formed XML: {exc}")
    except LookupError as exc:  # a declared encoding Python does not know ("bogus", "mac")
        return ParseResult(
            FORMAT, error=f"the document declares a character encoding that cannot be read ({exc})"
        )
    if position == 0:
        result.warnings.append("no job, position, posting or vacancy elements found")
    return result
