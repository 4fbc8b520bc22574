"""Which template variant an alert rule uses next: alerts are experiments too.

Until every variant has published, measured alerts, the rule rotates through them (the variant
with the fewest alerts so far, ties by a seeded draw), so each gets a fair start. From then on
the engine's Thompson sampling (`campaign.analysis.thompson_allocation`, with its floor so that
no variant starves) picks the next one from each variant's tracked-link clicks and impressions.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaign.analysis import FramingCounts, thompson_allocation
from campaign.models import Delivery
from campaign.models.alerts import VacancyAlert
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.services import ServiceError
from campaign.services.metric_reads import snapshots_at_age

# Alerts are compared at a week old: most of a post's clicks and views have come by then.
RESULT_AGE_SECONDS = 7 * 86400


class HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True)
class TemplateResult:
    """A variant's published alerts so far: tracked-link clicks and the networks' impressions."""

    clicks: int
    impressions: int


def template_results(session: Session, rule_id: int) -> dict[int, TemplateResult]:
    """Per template of the rule, clicks and impressions over its published, measured alerts."""
    pairs = session.execute(
        select(VacancyAlert.template_id, Delivery.id)
        .join(Delivery, Delivery.post_id == VacancyAlert.post_id)
        .where(
            VacancyAlert.rule_id == rule_id,
            VacancyAlert.template_id.is_not(None),
            Delivery.status == "published",
        )
        .distinct()
    ).all()
    if not pairs:
        return {}
    delivery_ids = sorted({delivery_id for _template, delivery_id in pairs})
    readings = snapshots_at_age(session, delivery_ids, RESULT_AGE_SECONDS, source=None)
    clicks = dict(
        session.execute(
            select(TrackedLink.delivery_id, func.count(LinkClick.id))
            .join(LinkClick, LinkClick.link_id == TrackedLink.id)
            .where(TrackedLink.delivery_id.in_(delivery_ids))
            .group_by(TrackedLink.delivery_id)
        ).all()
    )
    found: dict[int, TemplateResult] = {}
    for template_id, delivery_id in pairs:
        reading = readings.get(delivery_id)
        views = reading.figures.impressions if reading is not None else None
        if template_id is None or not views:
            continue  # not measured (yet), or a network without impressions
        so_far = found.get(int(template_id), TemplateResult(0, 0))
        found[int(template_id)] = TemplateResult(
            so_far.clicks + min(int(clicks.get(delivery_id, 0)), views),
            so_far.impressions + views,
        )
    return found


def choose_template(
    choices: Sequence[T],
    alerts_so_far: Mapping[int, int],
    seed: str,
    results: Mapping[int, TemplateResult] | None = None,
) -> T:
    """The variant for the next alert; reproducible from `seed`."""
    if not choices:
        raise ServiceError("The rule has no template.")
    ordered = sorted(choices, key=lambda t: t.id)
    results = results or {}
    if len(ordered) > 1 and all(results.get(t.id) for t in ordered):
        counts = [
            FramingCounts(str(t.id), results[t.id].clicks, results[t.id].impressions)
            for t in ordered
        ]
        pick = thompson_allocation(counts, _seed_number(seed)).next_framing
        return next(t for t in ordered if str(t.id) == pick)
    fewest = min(alerts_so_far.get(t.id, 0) for t in ordered)
    tied = [t for t in ordered if alerts_so_far.get(t.id, 0) == fewest]
    return random.Random(seed).choice(tied)  # noqa: S311 - a fair draw, not a secret


def _seed_number(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
