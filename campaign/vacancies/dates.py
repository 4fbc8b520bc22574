"""Dates as vacancy feeds write them: RFC 822, ISO 8601, UK day-first, named zones, free text.

Every result is an aware UTC datetime or None. A date without a zone is read in the
organisation's timezone (an IANA name); a date without a time is the start of that day, or its
end (23:59:59) for closing dates. An impossible date (31/02/2027) is never rolled over: it gives
None and a plain-English warning.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_WORD = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
# Hours offset of the named zones feeds use (RFC 822's plus the UK and central European ones).
_ZONES = {
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "bst": 1, "cet": 1, "cest": 2,
    "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
}  # fmt: skip
_ZONE = r"(?P<zone>z|ut|utc|gmt|bst|cest|cet|[ecmp][sd]t|[+-]\d{2}:?\d{2})"
_TIME = (
    r"(?P<h>\d{1,2})(?:[:.](?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?(?:\s*(?P<noon>noon|midday|midnight))?"
)
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|" + _WEEKDAY + r"(?P<nd>\d{1,2})(?:st|nd|rd|th)?[\s-]+(?:of\s+)?(?P<nm>" + _MONTH_WORD + r")"
    r"\.?,?[\s-]+(?P<ny>\d{4}|\d{2}(?![\d:]))"
    r"|" + _WEEKDAY + r"(?P<am>" + _MONTH_WORD + r")\.?\s+(?P<ad>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?P<ay>\d{4})"
    r"|" + _WEEKDAY + r"(?P<dd>\d{1,2})(?P<sep>[/.-])(?P<dm>\d{1,2})(?P=sep)(?P<dy>\d{4}|\d{2})"
    r")(?!(?!T\d)[\w/])",
    re.IGNORECASE,
)
_TIME_AFTER = re.compile(
    r"(?:[T\s]|,\s*|\s+at\s+|\s+by\s+)\s*(?:" + _TIME + r")(?:\s*\(?" + _ZONE + r"\)?)?(?![\w:])",
    re.IGNORECASE,
)
_ZONE_AFTER = re.compile(r"\s*\(?" + _ZONE + r"\)?(?!\w)", re.IGNORECASE)
_TIME_ANYWHERE = re.compile(
    r"(?<![\w:/.])(?:" + _TIME + r")(?:\s*\(?" + _ZONE + r"\)?)?(?![\w:/])", re.IGNORECASE
)
_NOON_ALONE = re.compile(r"\b(?P<noon>noon|midday|midnight)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedDate:
    """A parse outcome: the instant (aware UTC) or None, and a warning when refused."""

    value: dt.datetime | None
    warning: str | None = None
    matched: str = ""  # the text the date was read from


@lru_cache(maxsize=64)
def timezone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as Europe/London"
        ) from exc


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def _zone_offset(zone: str) -> dt.timezone:
    key = zone.lower()
    if key in _ZONES:
        return dt.timezone(dt.timedelta(hours=_ZONES[key]))
    sign = -1 if key[0] == "-" else 1
    digits = key[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _clock(m: re.Match[str]) -> tuple[int, int, int] | None:
    """(hour, minute, second) from a _TIME match, or None if it is not a time of day."""
    hour_text, minute, second = m.group("h"), m.group("mi"), m.group("s")
    ampm, noon = (m.group("ampm") or "").lower(), (m.group("noon") or "").lower()
    if not (minute or ampm or noon):
        return None  # a bare number is not a time
    hour = int(hour_text)
    if ampm:
        if not 1 <= hour <= 12:
            return (99, 0, 0)  # impossible, reported by the caller
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    if noon == "midnight" and hour == 12:
        return (23, 59, 59)  # "12 midnight" closing dates mean the end of the day
    return (hour, int(minute or 0), int(second or 0))


def _date_parts(m: re.Match[str]) -> tuple[int, int, int]:
    if m.group("iy"):
        return int(m.group("iy")), int(m.group("im")), int(m.group("id"))
    if m.group("nm"):
        return _year(m.group("ny")), _MONTHS[m.group("nm")[:3].lower()], int(m.group("nd"))
    if m.group("am"):
        return int(m.group("ay")), _MONTHS[m.group("am")[:3].lower()], int(m.group("ad"))
    return _year(m.group("dy")), int(m.group("dm")), int(m.group("dd"))


def _build(
    label: str,
    shown: str,
    ymd: tuple[int, int, int],
    clock: tuple[int, int, int] | None,
    zone: str | None,
    tz: ZoneInfo,
    end_of_day: bool,
) -> ParsedDate:
    try:
        day = dt.date(*ymd)
        if clock is None:
            clock = (23, 59, 59) if end_of_day else (0, 0, 0)
        if clock[0] == 24 and clock[1:] == (0, 0):
            clock = (23, 59, 59)
        local = dt.datetime.combine(day, dt.time(*clock))
    except ValueError:
        return ParsedDate(None, f"{label} {shown} is impossible; no {label} set", shown)
    tzinfo: dt.tzinfo = _zone_offset(zone) if zone else tz
    return ParsedDate(local.replace(tzinfo=tzinfo).astimezone(dt.UTC), None, shown)


def _time_near(window: str) -> tuple[tuple[int, int, int] | None, str | None]:
    for m in _TIME_ANYWHERE.finditer(window):
        clock = _clock(m)
        if clock is not None:
            return clock, m.group("zone")
    noon = _NOON_ALONE.search(window)
    if noon:
        return ((12, 0, 0) if noon.group("noon").lower() != "midnight" else (23, 59, 59)), None
    return None, None


def find_date(
    text: str, tz: ZoneInfo, *, label: str = "date", end_of_day: bool = False, near: str = ""
) -> ParsedDate | None:
    """The first date in `text` (with a following time and zone if any), or None if none.

    `near` is extra text searched for a time of day when none follows the date ("5pm on ...").
    """
    m = _DATE.search(text)
    if m is None:
        return None
    ymd = _date_parts(m)
    end, clock, zone = m.end(), None, None
    after = _TIME_AFTER.match(text, end)
    if after is not None and (parsed := _clock(after)) is not None:
        clock, zone, end = parsed, after.group("zone"), after.end()
    else:
        trailing = _ZONE_AFTER.match(text, end)
        if trailing is not None:
            zone, end = trailing.group("zone"), trailing.end()
        if near:
            clock, near_zone = _time_near(near)
            zone = zone or near_zone
    shown = text[m.start() : end].strip()
    return _build(label, shown, ymd, clock, zone, tz, end_of_day)


def parse_date(
    text: str, tz: ZoneInfo, *, label: str = "date", end_of_day: bool = False
) -> ParsedDate:
    """A structured date field; unrecognised text gives None and a warning naming it."""
    text = " ".join(text.split())
    if not text:
        return ParsedDate(None)
    found = find_date(text, tz, label=label, end_of_day=end_of_day)
    if found is None:
        return ParsedDate(None, f"{label} {text!r} was not recognised; no {label} set", text)
    return found


# The lookahead lets the engine skip positions no phrase can start at (3x faster).
_CLOSING = re.compile(
    r"(?=[acde])\b(?:closing\s+date(?:\s+for\s+applications)?|closing|closes(?:\s+on)?|close\s+date"
    r"|(?:application\s+)?deadline(?:\s+for\s+applications)?|apply\s+(?:by|before)"
    r"|applications?\s+(?:must\s+be\s+(?:received|submitted)\s+by|close(?:s)?(?:\s+on)?|by)"
    r"|expiry\s+date|expires(?:\s+on)?)\b",
    re.IGNORECASE,
)


_CLOSING_HINTS = ("clos", "deadline", "apply", "application", "expir")


def _closing_in(window: str, tz: ZoneInfo) -> ParsedDate | None:
    found = _DATE.search(window)
    if found is None:
        return None
    before = window[: found.start()]
    return find_date(window, tz, label="closing date", end_of_day=True, near=before)


def closing_from_text(
    text: str, tz: ZoneInfo, memo: dict[tuple[str, str], ParsedDate | None] | None = None
) -> tuple[ParsedDate | None, str]:
    """A closing date from phrases such as "Closing date: 3 April 2027 at 5pm", with the phrase.

    Returns (None, "") when no phrase with a date is found. `memo` (one dict per document)
    keeps the date read from each text after a phrase, since items repeat them.
    """
    lower = text.lower()
    if not any(hint in lower for hint in _CLOSING_HINTS):
        return None, ""
    for m in _CLOSING.finditer(text):
        window = text[m.end() : m.end() + 120].split("\n", 1)[0]
        if memo is None:
            parsed = _closing_in(window, tz)
        else:
            key = (window, tz.key)
            if key in memo:
                parsed = memo[key]
            else:
                parsed = memo[key] = _closing_in(window, tz)
        if parsed is None:
            continue
        end = window.index(parsed.matched) + len(parsed.matched) if parsed.matched else 0
        phrase = " ".join((text[m.start() : m.end()] + window[:end]).split())
        return parsed, phrase
    return None, ""
