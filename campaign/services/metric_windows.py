"""Which age windows a post is due for, and when to read it next: plain values, no database.

A window ("1h", "24h", "7d") is due once the post is at least that old and has no platform
snapshot for it yet; it is filled once. "latest" is refreshed at most every `latest_every`
while the post is younger than the largest age plus a margin (the horizon); after that the
post is finished and never read again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from campaign.models.metrics import LATEST_WINDOW

_AGE = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> int:
    """Seconds in an age like "30m", "1h" or "7d"; ValueError naming the text otherwise."""
    found = _AGE.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not an age like '30m', '1h' or '7d'")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


@dataclass(frozen=True)
class Window:
    label: str
    seconds: int


@dataclass(frozen=True)
class MetricsRules:
    """The collector's timings, from `[metrics]`."""

    windows: tuple[Window, ...]
    latest_every: dt.timedelta
    latest_margin: dt.timedelta
    batch_size: int = 200
    backoff_base: float = 300.0
    backoff_max: float = 21600.0
    claim: dt.timedelta = dt.timedelta(minutes=10)

    @classmethod
    def from_settings(cls, section: Any) -> MetricsRules:
        """Rules from the `[metrics]` settings section (ages already checked by the config)."""
        return cls(
            windows=windows_from(section.ages),
            latest_every=dt.timedelta(minutes=section.latest_every_minutes),
            latest_margin=dt.timedelta(hours=section.latest_margin_hours),
            batch_size=section.batch_size,
            backoff_base=float(section.backoff_base_seconds),
            backoff_max=float(section.backoff_max_seconds),
            claim=dt.timedelta(seconds=section.claim_seconds),
        )

    @property
    def horizon(self) -> dt.timedelta:
        """How long after publishing a post is read at all."""
        largest = max((w.seconds for w in self.windows), default=0)
        return dt.timedelta(seconds=largest) + self.latest_margin

    def backoff(self, failures: int) -> dt.timedelta:
        """The wait after the n-th failure in a row: base * 2^(n-1), at most the cap."""
        seconds = self.backoff_base * 2 ** max(0, min(failures, 30) - 1)
        return dt.timedelta(seconds=min(seconds, self.backoff_max))


def windows_from(ages: Sequence[str]) -> tuple[Window, ...]:
    """Windows sorted by age; ValueError for a bad age, a repeat or the reserved "latest"."""
    windows = sorted((Window(age.strip(), parse_age(age)) for age in ages), key=lambda w: w.seconds)
    labels = [w.label for w in windows]
    if LATEST_WINDOW in labels or len(set(labels)) != len(labels):
        raise ValueError("metric ages must be distinct and not 'latest'")
    return tuple(windows)


@dataclass(frozen=True)
class Plan:
    """What one reading of a post should store: the windows now due, and whether "latest"."""

    windows: tuple[Window, ...]
    latest: bool

    @property
    def empty(self) -> bool:
        return not self.windows and not self.latest


def plan_collection(
    published_at: dt.datetime,
    now: dt.datetime,
    have: Mapping[str, dt.datetime],
    rules: MetricsRules,
) -> Plan:
    """The windows due now (old enough, not filled yet) and whether to refresh "latest".

    `have` maps each window already stored for the post to when it was collected.
    """
    age = now - published_at
    due = tuple(
        w for w in rules.windows if age >= dt.timedelta(seconds=w.seconds) and w.label not in have
    )
    last = have.get(LATEST_WINDOW)
    stale = last is None or now - last >= rules.latest_every
    # A reading made for a window refreshes "latest" too: the figures are at hand.
    return Plan(due, bool(due) or (age < rules.horizon and stale))


def next_collection(
    published_at: dt.datetime,
    now: dt.datetime,
    filled: set[str],
    rules: MetricsRules,
) -> dt.datetime | None:
    """When the post is next due after a reading at `now`; None when it is finished."""
    moments = [
        published_at + dt.timedelta(seconds=w.seconds)
        for w in rules.windows
        if w.label not in filled
    ]
    end = published_at + rules.horizon
    if now + rules.latest_every < end:
        moments.append(now + rules.latest_every)
    upcoming = [moment for moment in moments if moment > now]
    if not upcoming and len(moments) > len(upcoming):
        # A window is still unfilled but already due (it failed to store): try again soon.
        return now + rules.latest_every
    return min(upcoming) if upcoming else None
