"""The framing report: each framing tag's pooled effect across an organisation's experiments.

Running and concluded experiments measured in clicks per impression contribute their arms'
totals at each experiment's report age, labelled with their variants' framing tags (an arm with
several tags counts as that combination, "context+question"). The engine pools them
(`framing_tag_effects`: meta-analysis, or a logit with experiment intercepts when tag sets
differ) and ranks them shrunken (`league_table`), so a tag with little data cannot top the table.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from campaign.models import Experiment, ExperimentArm, FramingTag, Organisation, Variant
from campaign.services.experiment_reads import CLICKS_PER_IMPRESSION, ArmTotals, arm_totals
from campaign.services.experiment_reports import arm_posts, arm_tags, slot_rows

if TYPE_CHECKING:
    from campaign.analysis import Experiment as TaggedExperiment
    from campaign.analysis import TagEffects
    from campaign.analysis.league import LeagueRow

UNTAGGED = "untagged"
INCLUDED_STATUSES = ("running", "concluded")


@dataclass(frozen=True)
class FramingReport:
    reference: str | None
    effects: TagEffects | None
    league: tuple[LeagueRow, ...]
    experiments: tuple[str, ...]
    left_out: tuple[str, ...]
    tag_labels: dict[str, str]
    # Tags a person could choose as the reference.
    tags: tuple[str, ...]

    def label(self, tag: str) -> str:
        """'context+question' as 'Context + Question'."""
        return " + ".join(self.tag_labels.get(t, t.replace("_", " ")) for t in tag.split("+"))


def arm_tag(arm: ExperimentArm) -> str:
    return "+".join(arm_tags(arm)) or UNTAGGED


def tagged_experiments(
    session: Session, organisation_id: int
) -> tuple[list[TaggedExperiment], list[str], list[str]]:
    """(engine experiments, control tags, sentences about experiments left out)."""
    from campaign.analysis import Experiment as TaggedExperiment
    from campaign.analysis import TaggedArm

    org = session.get(Organisation, organisation_id)
    timezone = org.timezone if org is not None else "UTC"
    found = (
        session.scalars(
            select(Experiment)
            .where(
                Experiment.organisation_id == organisation_id,
                Experiment.status.in_(INCLUDED_STATUSES),
            )
            .order_by(Experiment.id)
            .options(
                joinedload(Experiment.arms)
                .joinedload(ExperimentArm.variant)
                .joinedload(Variant.framing_tags),
            )
        )
        .unique()
        .all()
    )
    left_out = []
    per_post = [e for e in found if e.primary_metric != CLICKS_PER_IMPRESSION]
    if per_post:
        left_out.append(
            f"{len(per_post)} experiment{'s' if len(per_post) != 1 else ''} measured in clicks "
            "per post (no impressions) cannot be pooled with rates and "
            f"{'are' if len(per_post) != 1 else 'is'} left out."
        )
    usable = [e for e in found if e.primary_metric == CLICKS_PER_IMPRESSION and len(e.arms) >= 2]
    slots = slot_rows(session, [e.id for e in usable])
    # One read per distinct report age, all experiments' arms together.
    totals: dict[tuple[int, int], ArmTotals] = {}
    for age in sorted({e.report_age_seconds for e in usable}):
        group = [e for e in usable if e.report_age_seconds == age]
        keys = [(e.id, arm.position) for e in group for arm in e.arms]
        posts = [p for e in group for p in arm_posts(e, slots[e.id])]
        named = [(f"{k[0]}:{k[1]}", ids) for k, (_, ids) in zip(keys, posts, strict=True)]
        read = arm_totals(session, named, age, CLICKS_PER_IMPRESSION, timezone)
        totals.update(zip(keys, read, strict=True))
    experiments = []
    controls = []
    for e in usable:
        arms = tuple(
            TaggedArm(arm_tag(arm), totals[(e.id, arm.position)].clicks, _views(totals, e, arm))
            for arm in e.arms
        )
        if len({a.tag for a in arms}) < 2:
            left_out.append(f"'{e.name}' compares variants with the same framing tags.")
            continue
        experiments.append(TaggedExperiment(f"{e.name} (#{e.id})", arms))
        controls.append(arms[0].tag)
    return experiments, controls, left_out


def _views(totals: dict[tuple[int, int], ArmTotals], e: Experiment, arm: ExperimentArm) -> int:
    return totals[(e.id, arm.position)].impressions


def framing_report(
    session: Session,
    organisation_id: int,
    now: dt.datetime,
    reference_tag: str | None = None,
) -> FramingReport:
    """Pooled tag effects and the shrunken league table; reference defaults to the usual control.

    Raises ValueError when `reference_tag` is given but no experiment uses it.
    """
    from campaign.analysis import framing_tag_effects, league_table

    experiments, controls, left_out = tagged_experiments(session, organisation_id)
    labels = dict(
        session.execute(
            select(FramingTag.key, FramingTag.label).where(
                FramingTag.organisation_id == organisation_id
            )
        ).all()
    )
    tags = tuple(sorted({a.tag for e in experiments for a in e.arms}))
    if reference_tag is not None and reference_tag not in tags:
        raise ValueError(f"no running or concluded experiment has an arm tagged {reference_tag!r}")
    if not experiments:
        return FramingReport(None, None, (), (), tuple(left_out), labels, tags)
    counts = Counter(controls)
    reference = reference_tag or min(counts, key=lambda t: (-counts[t], t))
    effects = framing_tag_effects(experiments, reference)
    league = tuple(league_table(effects))
    return FramingReport(
        reference,
        effects,
        league,
        tuple(e.label for e in experiments),
        tuple(left_out),
        labels,
        tags,
    )
