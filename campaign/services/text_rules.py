"""Whether a text can be published on a channel, and why not, in each network's own count.

Every count is taken on `normalised(text)`: NFC, each line ending a single "\\n" (what X
counts itself). A decomposed "e\\u0301" is then one "é" everywhere: one character for the
outbox and 2 bytes, not 3, towards Bluesky's byte limit (grapheme counts already made it one).
A browser's "\\r\\n" is one line break, not a control character. Store drafts normalised,
so what is sent is what was checked. Network libraries are imported only when needed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

UNIT = "characters"
EMPTY = "The post is empty."
_LINE_ENDINGS = re.compile(r"\r\n|\r")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ALLOWED_CONTROLS = frozenset("\n\t")

# A counter takes the normalised text and the limits; it returns length, limit and problems.
_Counted = tuple[int, int | None, list[str]]


@dataclass(frozen=True)
class ChannelLimits:
    """What the checker needs to know about one channel."""

    kind: str  # outbox | manual | x | mastodon | bluesky
    max_characters: int | None = None  # the Mastodon instance's own limit, once read
    characters_per_url: int | None = None  # what the Mastodon instance counts per link

    @classmethod
    def of(cls, channel: Any) -> ChannelLimits:
        """The limits of a Channel-like object (its kind, max_characters, characters_per_url)."""
        return cls(
            kind=str(channel.kind),
            max_characters=getattr(channel, "max_characters", None),
            characters_per_url=getattr(channel, "characters_per_url", None),
        )


@dataclass(frozen=True)
class TextCheck:
    """One channel's verdict: the length in its own unit, its limit, and what stands in the way."""

    kind: str
    length: int
    limit: int | None
    unit: str
    ok: bool
    problems: tuple[str, ...]
    remaining: int | None  # limit - length; negative when too long


def normalised(text: str) -> str:
    """The form every count is taken on: NFC, with each line ending a single newline."""
    return _LINE_ENDINGS.sub("\n", unicodedata.normalize("NFC", text))


def check_text(text: str, limits: ChannelLimits) -> TextCheck:
    """How long the text is on this channel and every reason it cannot be published there."""
    counter = _COUNTERS.get(limits.kind)
    if counter is None:
        raise ValueError(f"Unknown channel kind: {limits.kind!r}")
    text = normalised(text)
    problems = [] if text.strip() else [EMPTY]
    problems += _character_problems(text)
    # An unpaired surrogate (JSON can carry "\ud800") cannot be encoded, so the networks'
    # counters would crash on it; it is already a problem, and counts as one U+FFFD.
    length, limit, too_long = counter(_SURROGATE.sub("\ufffd", text), limits)
    problems += too_long
    return TextCheck(
        kind=limits.kind,
        length=length,
        limit=limit,
        unit=UNIT,
        ok=not problems,
        problems=tuple(problems),
        remaining=None if limit is None else limit - length,
    )


def check_for_channels(text: str, channels: Iterable[ChannelLimits]) -> list[TextCheck]:
    """One check per channel, in the order given."""
    return [check_text(text, limits) for limits in channels]


def _character_problems(text: str) -> list[str]:
    controls = [i for i, ch in enumerate(text, 1) if _is_control(ch)]
    broken = [m.start() + 1 for m in _SURROGATE.finditer(text)]
    return [
        *_at(text, controls, "an invisible control character"),
        *_at(text, broken, "a broken character"),
    ]


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS


def _at(text: str, positions: list[int], what: str) -> list[str]:
    """One sentence for the first position (1-based), with how many more there are."""
    if not positions:
        return []
    first = positions[0]
    more = f" and {len(positions) - 1} more like it" if len(positions) > 1 else ""
    code = f"U+{ord(text[first - 1]):04X}"
    return [f"The post contains {what} ({code}) at position {first}{more}."]


def _max_length(kind: str) -> int:
    from campaign.channels import capabilities

    limit = capabilities(kind).max_length
    if limit is None:  # pragma: no cover - every kind checked here declares one
        raise RuntimeError(f"The {kind} adapter declares no length limit.")
    return limit


def _x(text: str, limits: ChannelLimits) -> _Counted:
    from campaign.channels.x import x_text_problems, x_weighted_length

    length, limit = x_weighted_length(text), _max_length("x")
    problems = []
    if length > limit:
        problems.append(
            f"Too long for X: {length} of {limit} characters "
            "(X counts each link as 23 and emoji or CJK characters as 2)."
        )
    # twitter-text reports a refused character only when the text is short enough, so ask
    # about each visible character alone: one character is never too long nor empty.
    if x_text_problems(text):
        bad = {ch for ch in set(text) if ch.strip() and x_text_problems(ch)}
        refused = [i for i, ch in enumerate(text, 1) if ch in bad]
        problems += _at(text, refused, "a character X does not accept")
    return length, limit, problems


def _mastodon(text: str, limits: ChannelLimits) -> _Counted:
    from campaign.channels.mastodon import DEFAULT_MAX_CHARACTERS as DEFAULT_LIMIT
    from campaign.channels.mastodon import DEFAULT_URL_LENGTH, mastodon_length

    per_url = limits.characters_per_url or DEFAULT_URL_LENGTH
    limit = limits.max_characters or DEFAULT_LIMIT
    length = mastodon_length(text, per_url)
    whose = (
        f"this instance allows {limit}"
        if limits.max_characters
        else f"Mastodon's usual limit of {limit}; the instance's own limit has not been read yet"
    )
    problem = (
        f"Too long for Mastodon: {length} of {limit} characters "
        f"({whose}; each link counts as {per_url})."
    )
    return length, limit, [problem] if length > limit else []


def _bluesky(text: str, limits: ChannelLimits) -> _Counted:
    from campaign.channels.bluesky import MAX_BYTES, MAX_GRAPHEMES, bluesky_length, link_facets

    length, size = bluesky_length(text), len(text.encode())
    problems = []
    if length > MAX_GRAPHEMES:
        links = " Bluesky counts each link at its full length." if link_facets(text) else ""
        problems.append(f"Too long for Bluesky: {length} of {MAX_GRAPHEMES} characters.{links}")
    if size > MAX_BYTES:
        problems.append(
            f"Too large for Bluesky: {size} of {MAX_BYTES} bytes "
            "(emoji and many scripts take several bytes each)."
        )
    return length, MAX_GRAPHEMES, problems


def _outbox(text: str, limits: ChannelLimits) -> _Counted:
    length, limit = len(text), _max_length("outbox")
    problems = [f"Too long for the outbox: {length} of {limit} characters."]
    return length, limit, problems if length > limit else []


def _manual(text: str, limits: ChannelLimits) -> _Counted:
    return len(text), None, []  # staff post it by hand, wherever they like


_COUNTERS: dict[str, Callable[[str, ChannelLimits], _Counted]] = {
    "outbox": _outbox,
    "manual": _manual,
    "x": _x,
    "mastodon": _mastodon,
    "bluesky": _bluesky,
}
# The channel kinds whose length rules are known here.
KNOWN_KINDS = frozenset(_COUNTERS)
