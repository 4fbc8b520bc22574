"""Plain input types for the analysis engine (no ORM, no Flask)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Post:
    """One post of an arm: its impressions, link clicks and optional time slot."""

    impressions: int
    clicks: int
    slot: str | None = None


@dataclass(frozen=True)
class Arm:
    """One framing in an experiment: totals, plus its posts when known."""

    name: str
    impressions: int
    clicks: int
    posts: tuple[Post, ...] = ()

    @property
    def misses(self) -> int:
        """Impressions without a click."""
        return self.impressions - self.clicks

    @property
    def rate(self) -> float | None:
        """Clicks per impression, or None with no impressions."""
        return self.clicks / self.impressions if self.impressions else None
