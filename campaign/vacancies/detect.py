"""Which parser a document needs, from its first bytes (the content type is only a hint).

RSS/Atom must be told apart from job XML before feedparser sees it: given `<source><job>`,
feedparser returns no entries and no error.
"""

from __future__ import annotations

import re

from campaign.vacancies.csvfile import parse_csv, parse_json
from campaign.vacancies.jobxml import parse_jobxml
from campaign.vacancies.jsonld import parse_jsonld_html
from campaign.vacancies.records import ParseResult
from campaign.vacancies.rss import parse_rss

RSS, JOBXML, JSONLD, CSV, JSON = "rss", "jobxml", "jsonld", "csv", "json"
_PROLOG = re.compile(
    rb"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]*\[.*?\])?[^>]*>)*",
    re.DOTALL | re.IGNORECASE,
)
_ROOT = re.compile(rb"<([A-Za-z_][\w:.-]*)([^>]*)>?")
# Atom 1.0, and Atom 0.3 (deprecated, still served by old blog and job-board software).
_ATOM_NAMESPACES = (b"http://www.w3.org/2005/Atom", b"http://purl.org/atom/ns#")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _head(body: bytes) -> bytes:
    head = body[:65536]
    for bom in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].replace(b"\x00", b"") if bom != _BOMS[0] else head[3:]
    return head


def detect(body: bytes, content_type: str = "") -> str:
    """One of rss, jobxml, jsonld, csv, json; or "" when the document is none of them."""
    head = _head(body)
    stripped = head.lstrip()
    kind = content_type.split(";", 1)[0].strip().lower()
    if stripped[:1] in (b"{", b"["):
        return JSON
    if stripped[:1] == b"<":
        if re.match(rb"\s*(?:<!--.*?-->\s*)*<!doctype\s+html|\s*<html", head, re.I | re.S):
            return JSONLD
        prolog = _PROLOG.match(head)
        root = _ROOT.match(head, prolog.end() if prolog else 0)
        if root is None:
            return JSONLD if "html" in kind else ""
        name = root.group(1).rsplit(b":", 1)[-1].lower()
        if name in (b"rss", b"rdf"):
            return RSS
        if name == b"feed":
            return RSS if any(ns in root.group(2) for ns in _ATOM_NAMESPACES) else JOBXML
        if name in (b"html", b"head", b"body"):
            return JSONLD
        return JOBXML
    if kind in ("text/csv", "application/csv", "text/comma-separated-values") or (
        b"," in stripped.split(b"\n", 1)[0]
    ):
        return CSV
    return ""


def parse_document(body: bytes, *, content_type: str = "", source_url: str = "") -> ParseResult:
    """Detect the format and parse; an unrecognised document gives a clear error."""
    if not body.strip():
        return ParseResult("", error="the document is empty")
    kind = detect(body, content_type)
    if kind == RSS:
        return parse_rss(body, content_type=content_type, source_url=source_url)
    if kind == JOBXML:
        return parse_jobxml(body, source_url=source_url)
    if kind == JSONLD:
        return parse_jsonld_html(body, source_url=source_url)
    if kind == JSON:
        return parse_json(body, source_url=source_url)
    if kind == CSV:
        return parse_csv(body, source_url=source_url)
    shown = content_type or "no content type"
    return ParseResult(
        "", error=f"unrecognised document ({shown}): not RSS/Atom, job XML, HTML, JSON or CSV"
    )
