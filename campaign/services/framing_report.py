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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from campaign.models import Experiment, ExperimentArm, FramingTag, variant_framing_tags
from campaign.services.experiment_reads import CLICKS_PER_IMPRESSION, RateSums, rate_sums

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


@dataclass
class _Arm:
    id: int
    tags: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return "+".join(sorted(self.tags)) or UNTAGGED


@dataclass
class _Experiment:
    id: int
    name: str
    metric: str
    age_seconds: int
    arms: list[_Arm] = field(default_factory=list)


# Built once, so that each report pays neither construction nor compilation.
_INCLUDED = (
    select(
        Experiment.id,
        Experiment.name,
        Experiment.primary_metric,
        Experiment.report_age_seconds,
        ExperimentArm.id.label("arm_id"),
        FramingTag.key,
    )
    .outerjoin(ExperimentArm, ExperimentArm.experiment_id == Experiment.id)
    .outerjoin(variant_framing_tags, variant_framing_tags.c.variant_id == ExperimentArm.variant_id)
    .outerjoin(FramingTag, FramingTag.id == variant_framing_tags.c.framing_tag_id)
    .where(Experiment.organisation_id == bindparam("organisation_id", type_=Integer()))
    .where(Experiment.status.in_(INCLUDED_STATUSES))
    .order_by(Experiment.id, ExperimentArm.position)
)
_LABELS = select(FramingTag.key, FramingTag.label).where(
    FramingTag.organisation_id == bindparam("organisation_id", type_=Integer())
)


def _included(session: Session, organisation_id: int) -> list[_Experiment]:
    """The organisation's running and concluded experiments with their arms (control first)
    and the arms' framing tag keys: one statement of plain columns, no objects.

    Through the session, not its connection, so that pending changes are flushed first (as an
    ORM query would); the per-arm sums that follow read the same transaction.
    """
    rows = session.execute(_INCLUDED, {"organisation_id": organisation_id}).all()
    found: dict[int, _Experiment] = {}
    arms: dict[int, _Arm] = {}
    for row in rows:
        exp = found.get(row.id)
        if exp is None:
            exp = found[row.id] = _Experiment(
                row.id, row.name, row.primary_metric, row.report_age_seconds
            )
        if row.arm_id is None:
            continue
        arm = arms.get(row.arm_id)
        if arm is None:
            arm = arms[row.arm_id] = _Arm(row.arm_id)
            exp.arms.append(arm)
        if row.key is not None:
            arm.tags.append(row.key)
    return list(found.values())


def tagged_experiments(
    session: Session, organisation_id: int
) -> tuple[list[TaggedExperiment], list[str], list[str]]:
    """(engine experiments, control tags, sentences about experiments left out)."""
    from campaign.analysis import Experiment as TaggedExperiment
    from campaign.analysis import TaggedArm

    found = _included(session, organisation_id)
    left_out = []
    per_post = [e for e in found if e.metric != CLICKS_PER_IMPRESSION]
    if per_post:
        left_out.append(
            f"{len(per_post)} experiment{'s' if len(per_post) != 1 else ''} measured in clicks "
            "per post (no impressions) cannot be pooled with rates and "
            f"{'are' if len(per_post) != 1 else 'is'} left out."
        )
    usable = [e for e in found if e.metric == CLICKS_PER_IMPRESSION and len(e.arms) >= 2]
    # Only each arm's totals are needed: one statement per distinct report age, added up in
    # the database, no per-post records.
    totals: dict[int, RateSums] = {}
    for age in sorted({e.age_seconds for e in usable}):
        totals.update(rate_sums(session, [e.id for e in usable if e.age_seconds == age], age))
    experiments = []
    controls = []
    for e in usable:
        # An arm without a measured post has no sums: zero clicks in zero impressions.
        arms = tuple(TaggedArm(arm.tag, *_clicks_and_views(totals.get(arm.id))) for arm in e.arms)
        if len({a.tag for a in arms}) < 2:
            left_out.append(f"'{e.name}' compares variants with the same framing tags.")
            continue
        experiments.append(TaggedExperiment(f"{e.name} (#{e.id})", arms))
        controls.append(arms[0].tag)
    return experiments, controls, left_out


def _clicks_and_views(sums: RateSums | None) -> tuple[int, int]:
    return (sums.clicks, sums.impressions) if sums is not None else (0, 0)


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
    rows = session.connection().execute(_LABELS, {"organisation_id": organisation_id}).all()
    labels = {row.key: row.label for row in rows}
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
