"""Salary free text: the original always kept; numbers only when the text is unambiguous.

"Up to £40k", "£27,000 - £31,000 pa", "£12.21 per hour" and "£25k-£28k" give a minimum and/or
maximum, a currency and a period. "Competitive" or "DOE" give no numbers and the missing flag;
"expenses only" or "voluntary" the unpaid flag; "OTE" or "commission" the commission flag (an
OTE figure is never taken as the salary). Several different amounts that are not one range give
the ambiguous flag and no numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from campaign.vacancies.records import (
    FLAG_COMMISSION,
    FLAG_SALARY_AMBIGUOUS,
    FLAG_SALARY_MISSING,
    FLAG_UNPAID,
)

_SYMBOLS = {"£": "GBP", "$": "USD", "€": "EUR"}
_CODES = ("GBP", "USD", "EUR", "AUD", "CAD", "NZD")
_CUR = r"(?:[£$€]|\b(?:gbp|usd|eur|aud|cad|nzd)\s?)"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_AMOUNT = re.compile(
    r"(?<![\d.,])(?P<cur>" + _CUR + r")?(?P<num>" + _NUM + r")(?![.,]?\d)(?:\s?(?P<k>k)\b)?",
    re.IGNORECASE,
)
_MONEYISH = re.compile(_CUR + r"\s?\d", re.IGNORECASE)
_RANGE_SEP = re.compile(r"^\s*(?:-|–|—|to|and)\s*$", re.IGNORECASE)
_UP_TO = re.compile(r"\b(?:up\s+to|max(?:imum)?|not\s+more\s+than)\s*$", re.IGNORECASE)
_FROM = re.compile(r"\b(?:from|min(?:imum)?|starting\s+(?:at|from)|at\s+least)\s*$", re.IGNORECASE)
_PERIOD = re.compile(
    r"(?P<hour>per\s+hour|an\s+hour|hourly|/\s?h(?:ou)?r\b|(?:\b|(?<=\d))ph\b|\bp/h\b)"
    r"|(?P<day>per\s+day|a\s+day\b|daily|/\s?day\b|\bpd\b)"
    r"|(?P<week>per\s+week|a\s+week\b|weekly|/\s?w(?:ee)?k\b|(?:\b|(?<=\d))pw\b)"
    r"|(?P<month>per\s+(?:calendar\s+)?month|a\s+month\b|monthly|(?:\b|(?<=\d))pcm\b|/\s?month)"
    r"|(?P<year>per\s+annum|per\s+year|a\s+year\b|(?:\b|(?<=\d))p\.?\s?a\b\.?|annual(?:ly)?"
    r"|yearly|/\s?y(?:ea)?r\b)",
    re.IGNORECASE,
)
# Cheap substring tests that let most texts skip the regular expressions below.
_UNPAID_HINTS = ("unpaid", "expenses", "volunt", "no pay", "no salary", "not paid")
_COMMISSION_HINTS = ("ote", "target", "commission")
_NOT_MONEY_HINTS = ("grade", "band", "level", "spine", "scale", "point", "sp", "hour", "hrs",
                    "day", "week", "month", "year", "%")  # fmt: skip
_UNPAID = re.compile(
    r"\bunpaid\b|expenses\s+only|\bvoluntary\b|\bvolunteer(?:ing)?\b|\bno\s+(?:pay|salary)\b"
    r"|\bnot\s+paid\b",
    re.IGNORECASE,
)
_COMMISSION = re.compile(r"\bote\b|on[\s-]target\s+earnings|\bcommission\b", re.IGNORECASE)
_OTE = re.compile(r"\bote\b|on[\s-]target", re.IGNORECASE)
# Numbers that are grades, bands, spine points or hours, not money.
_NOT_MONEY = re.compile(
    r"\b(?:grade|band|level|spine(?:\s+points?)?|scale|point|sp)\s*\d+(?:\s*[-–]\s*\d+)?\b"
    r"|\b\d+(?:\.\d+)?\s*(?:hours?|hrs|days?|weeks?|months?|years?|%)"
    r"(?:\s+(?:per|a|each)\s+(?:week|day|month|year))?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Salary:
    """Parsed salary numbers (None when not stated or not unambiguous) and flags."""

    minimum: Decimal | None = None
    maximum: Decimal | None = None
    currency: str | None = None
    period: str | None = None
    flags: frozenset[str] = frozenset()


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    token = token.strip()
    return _SYMBOLS.get(token, token.upper() if token.upper() in _CODES else None)


def _value(num: str, k: str | None) -> Decimal | None:
    try:
        value = Decimal(num.replace(",", ""))
    except InvalidOperation:
        return None
    return value * 1000 if k else value


def period_of(text: str) -> str | None:
    """The pay period stated in the text, or None (several different ones also give None)."""
    found = {m.lastgroup for m in _PERIOD.finditer(text)}
    return found.pop() if len(found) == 1 else None


def parse_salary(text: str) -> Salary:
    """Read a salary text; see the module docstring for what counts as unambiguous."""
    text = " ".join(text.split())
    if not text:
        return Salary(flags=frozenset({FLAG_SALARY_MISSING}))
    flags: set[str] = set()
    lower = text.lower()
    if any(h in lower for h in _UNPAID_HINTS) and _UNPAID.search(text):
        return Salary(flags=frozenset({FLAG_UNPAID}))
    commission = any(h in lower for h in _COMMISSION_HINTS) and _COMMISSION.search(text)
    if commission:
        flags.add(FLAG_COMMISSION)
    scrubbed = _NOT_MONEY.sub(" ", text) if any(h in lower for h in _NOT_MONEY_HINTS) else text
    amounts = [m for m in _AMOUNT.finditer(scrubbed) if m.group("cur") or m.group("k")]
    if not amounts:
        if _MONEYISH.search(scrubbed):
            return Salary(flags=frozenset(flags | {FLAG_SALARY_AMBIGUOUS}))
        flags.add(FLAG_SALARY_MISSING)  # "Competitive", "DOE", "Negotiable"...
        return Salary(flags=frozenset(flags))
    if commission and _OTE.search(text):
        return Salary(flags=frozenset(flags))  # an OTE figure is not a salary
    first = amounts[0]
    currency = _currency(first.group("cur"))
    low = _value(first.group("num"), first.group("k"))
    high: Decimal | None = low
    end = first.end()
    # A range: "£27,000 - £31,000", "£25k-£28k", "£20-25k", "£30000 - 33000".
    second = _AMOUNT.search(scrubbed, first.end())
    if second is not None and _RANGE_SEP.match(scrubbed[first.end() : second.start()]):
        cur2 = _currency(second.group("cur"))
        if cur2 and currency and cur2 != currency:
            return Salary(flags=frozenset(flags | {FLAG_SALARY_AMBIGUOUS}))
        low = _value(first.group("num"), first.group("k"))
        if second.group("k") and not first.group("k") and low is not None and low < 1000:
            low *= 1000  # "£20-25k"
        high = _value(second.group("num"), second.group("k"))
        end = second.end()
    rest = [m for m in amounts if m.start() >= end]
    if rest or low is None or high is None or low > high:
        return Salary(flags=frozenset(flags | {FLAG_SALARY_AMBIGUOUS}))
    before = scrubbed[: first.start()]
    minimum: Decimal | None = low
    maximum: Decimal | None = high
    if low == high and before.strip():
        if _UP_TO.search(before):
            minimum = None
        elif _FROM.search(before):
            maximum = None
    period = period_of(scrubbed)
    if period is None and high >= 1000:
        period = "year"  # "£25k-£28k", "£30000 - 33000": annual figures
    return Salary(minimum, maximum, currency, period, frozenset(flags))
