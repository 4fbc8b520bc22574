"""Cheap re-polls of RSS/Atom: hash each item's bytes and parse only the items not seen before.

A feed whose body changed in a few items would otherwise cost a whole feedparser parse. Here the
body is split into its `<item>`/`<entry>` elements by a byte scan, each is hashed, and only the
new or edited ones are parsed, inside the document's own head and tail (so namespaces, xml:base
and the channel stay in scope). If the split looks wrong (the partial parse fails or returns a
different number of items) the whole body is parsed instead, so the result is never worse than
a full parse.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Set
from dataclasses import dataclass, field

from campaign.vacancies.records import ParseResult
from campaign.vacancies.rss import parse_rss

_START = re.compile(rb"<(item|entry)(?=[\s>])")


@dataclass
class Incremental:
    """The items to process, plus the hash of every item in the body (in document order).

    `hashes[i]` belongs to the item at position i + 1; the caller keeps them for the next poll
    (and can tell from them which known items are still in the feed). `full` is True when the
    whole body had to be parsed.
    """

    result: ParseResult
    hashes: list[str] = field(default_factory=list)
    full: bool = False


def item_hash(chunk: bytes) -> str:
    return hashlib.blake2b(chunk, digest_size=16).hexdigest()


def _item_spans(body: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level item or entry element; [] if the scan finds none or an
    unclosed one. One pass: each search starts where the previous element ended."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (start := _START.search(body, position)) is not None:
        close = body.find(b"</" + start.group(1), start.end())
        end = body.find(b">", close) if close >= 0 else -1
        if end < 0:
            return []
        spans.append((start.start(), end + 1))
        position = end + 1
    return spans


def parse_changed(
    body: bytes, known: Set[str], *, content_type: str = "", source_url: str = ""
) -> Incremental:
    """Parse only the items whose bytes are not in `known` (hashes from the last poll)."""
    spans = _item_spans(body)
    if not spans:
        result = parse_rss(body, content_type=content_type, source_url=source_url)
        return Incremental(result, [], full=True)
    hashes = [item_hash(body[start:end]) for start, end in spans]
    changed = [i for i, digest in enumerate(hashes) if digest not in known]
    if not changed:
        return Incremental(ParseResult("rss"), hashes)
    partial = body[: spans[0][0]]
    partial += b"".join(body[spans[i][0] : spans[i][1]] for i in changed)
    partial += body[spans[-1][1] :]
    result = parse_rss(partial, content_type=content_type, source_url=source_url)
    if result.error is not None or len(result.items) != len(changed):
        result = parse_rss(body, content_type=content_type, source_url=source_url)
        return Incremental(result, hashes if result.error is None else [], full=True)
    for item, index in zip(result.items, changed, strict=True):
        item.position = index + 1
    return Incremental(result, hashes)
