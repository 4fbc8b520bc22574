"""Layered de-duplication: GUID, then normalised URL, then employer + title + location.

A GUID is trusted unless this batch uses it for different links; a URL is trusted unless it
carries different titles (in this batch, or against the record it would match). The last layer
is a case-, whitespace- and punctuation-insensitive fingerprint of employer, title and location,
used only when the employer is known. `match` is pure: it takes the incoming vacancies and the
existing records' keys and says, for each item, new / update / unchanged / duplicate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from campaign.vacancies.records import DedupeKeys, RawItem, Vacancy
from campaign.vacancies.urls import normalise_url

_PUNCTUATION = re.compile(r"[^\w\s]+")

Outcome = Literal["new", "update", "unchanged", "duplicate"]


def simplify(text: str) -> str:
    """Case-, accent-form-, punctuation- and whitespace-insensitive form of a name."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def keys_for(
    *, guid: str, url: str, employer: str, title: str, location: str, scope: str = ""
) -> DedupeKeys:
    """The keys of one vacancy. A GUID that is a URL is global; any other is scoped to the
    source (`scope`), since "1" or "job-1" in two feeds are different jobs."""
    guid = guid.strip()
    guid_key: str | None = None
    if guid:
        as_url = normalise_url(guid) if guid.lower().startswith(("http://", "https://")) else None
        guid_key = f"url:{as_url}" if as_url else f"id:{scope}:{guid}"
    title_key = simplify(title)
    employer_key = simplify(employer)
    fingerprint = f"{employer_key}|{title_key}|{simplify(location)}" if employer_key else None
    return DedupeKeys(guid_key, normalise_url(url) if url else None, fingerprint, title_key)


def content_hash(item: RawItem) -> str:
    """A hash of everything a parser extracted (not its position): equal means unchanged."""
    fields = dict(vars(item))
    del fields["position"]
    return hashlib.blake2b(repr(fields).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Existing:
    """What the matcher needs to know about a stored vacancy."""

    id: int
    keys: DedupeKeys
    content_hash: str


@dataclass(frozen=True)
class Match:
    """The decision for one incoming item (by its index in the incoming list)."""

    index: int
    outcome: Outcome
    existing_id: int | None = None  # for update / unchanged
    duplicate_of: int | None = None  # index of the earlier incoming item, for duplicate
    matched_on: str | None = None  # "guid", "url" or "fingerprint"


def _unreliable(
    items: Sequence[Vacancy], key: str, other: str
) -> set[str]:  # keys used with more than one distinct `other`
    seen: dict[str, set[str | None]] = defaultdict(set)
    for vacancy in items:
        value = getattr(vacancy.keys, key)
        if value is not None:
            seen[value].add(getattr(vacancy.keys, other))
    return {value for value, others in seen.items() if len(others) > 1}


def match(incoming: Sequence[Vacancy], existing: Sequence[Existing]) -> list[Match]:
    """For each incoming vacancy: new, update/unchanged of an existing id, or a duplicate of an
    earlier item in this batch. Layers are tried in order; the first that matches decides."""
    bad_guids = _unreliable(incoming, "guid", "url")
    bad_urls = _unreliable(incoming, "url", "title")
    by_guid = {e.keys.guid: e for e in existing if e.keys.guid is not None}
    by_url: dict[str, list[Existing]] = defaultdict(list)
    by_fingerprint = {e.keys.fingerprint: e for e in existing if e.keys.fingerprint is not None}
    for record in existing:
        if record.keys.url:
            by_url[record.keys.url].append(record)
    batch: dict[tuple[str, str], int] = {}
    results: list[Match] = []
    for index, vacancy in enumerate(incoming):
        layers = _layers(vacancy.keys, bad_guids, bad_urls)
        earlier: tuple[str, int] | None = None
        for key, value in layers:
            seen = batch.setdefault((key, value), index)
            if seen != index and earlier is None:
                earlier = (key, seen)
        if earlier is not None:
            results.append(
                Match(index, "duplicate", duplicate_of=earlier[1], matched_on=earlier[0])
            )
            continue
        found = _find_existing(vacancy.keys, layers, by_guid, by_url, by_fingerprint)
        if found is None:
            results.append(Match(index, "new"))
            continue
        record, layer = found
        outcome: Outcome = "unchanged" if record.content_hash == vacancy.content_hash else "update"
        results.append(Match(index, outcome, existing_id=record.id, matched_on=layer))
    return results


def _layers(keys: DedupeKeys, bad_guids: set[str], bad_urls: set[str]) -> list[tuple[str, str]]:
    layers: list[tuple[str, str]] = []
    if keys.guid and keys.guid not in bad_guids:
        layers.append(("guid", keys.guid))
    if keys.url and keys.url not in bad_urls:
        layers.append(("url", keys.url))
    if keys.fingerprint:
        layers.append(("fingerprint", keys.fingerprint))
    return layers


def _find_existing(
    keys: DedupeKeys,
    layers: list[tuple[str, str]],
    by_guid: dict[str, Existing],
    by_url: dict[str, list[Existing]],
    by_fingerprint: dict[str, Existing],
) -> tuple[Existing, str] | None:
    for layer, value in layers:
        if layer == "guid" and value in by_guid:
            return by_guid[value], layer
        if layer == "url":
            # The same URL with a different title is a different job (two jobs, one URL).
            same = [r for r in by_url.get(value, ()) if r.keys.title == keys.title]
            if same:
                return same[0], layer
        if layer == "fingerprint" and value in by_fingerprint:
            return by_fingerprint[value], layer
    return None


def count_drop_warning(previous: int | None, current: int, *, ratio: float = 0.5) -> str | None:
    """A warning when a full feed suddenly holds far fewer items than last time (feeds that
    silently lose items); None when the count is steady, growing or there is no history."""
    if previous is None or previous < 4 or current >= previous * ratio:
        return None
    return f"the feed has {current} items, down from {previous} at the last poll; check the source"
