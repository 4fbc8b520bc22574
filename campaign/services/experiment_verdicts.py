"""The experiment report's engine calls, verdict rule, progress line, rows and warnings.

Everything statistical is the engine's (campaign.analysis); this module only feeds it the
measured posts and words what comes back, honouring the experiment's verdict rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from campaign.models import ExperimentArm
from campaign.services.experiment_reads import CLICKS_PER_IMPRESSION, ArmTotals

if TYPE_CHECKING:
    import datetime as dt

    from campaign.analysis import CompareResult, PerPostComparison
    from campaign.analysis.results import ComparisonResult
    from campaign.services.experiment_reports import ArmRow, ExperimentInfo, Progress

# The verdict and summary while no post of the experiment has figures at the age.
NO_DATA = "No data yet: no post of this experiment has figures at the report age."


def compare_totals(totals: Sequence[ArmTotals], alpha: float) -> CompareResult:
    """The engine's comparison of clicks per impression over the measured posts, control first."""
    from campaign.analysis import Arm, Post, compare

    arms = [
        Arm(
            t.name,
            t.impressions,
            t.clicks,
            tuple(Post(p.impressions or 0, p.clicks or 0, p.slot) for p in t.measured),
        )
        for t in totals
    ]
    return compare(arms, 0, min(alpha, 0.5))


def compare_counts(totals: Sequence[ArmTotals]) -> PerPostComparison | None:
    """The engine's per-post comparison; None until every arm has a measured post."""
    from campaign.analysis import CountArm, PostCounts, compare_per_post

    if any(not t.measured for t in totals):
        return None
    arms = [
        CountArm(t.name, tuple(PostCounts(p.clicks or 0, p.interactions or 0) for p in t.measured))
        for t in totals
    ]
    return compare_per_post(arms, 0)


def _per_thousand(rate: float | None) -> str:
    return "no impressions yet" if rate is None else f"{rate * 1000:.3g} per 1,000 impressions"


def progress(
    info: ExperimentInfo,
    totals: Sequence[ArmTotals],
    comparison: CompareResult | PerPostComparison | None,
) -> Progress:
    """The smallest arm against the plan, and how much more each arm needs."""
    from campaign.analysis import CompareResult
    from campaign.services.experiment_reports import Progress

    by_impressions = (
        info.primary_metric == CLICKS_PER_IMPRESSION and info.planned_impressions_per_arm
    )
    if by_impressions:
        unit, planned = "impressions", info.planned_impressions_per_arm
        have = min((t.impressions for t in totals), default=0)
    else:
        unit, planned = "posts", info.planned_posts_per_arm
        have = min((len(t.measured) for t in totals), default=0)
    complete = planned is not None and have >= planned
    more = None if planned is None else max(0, planned - have)
    if planned is None:
        sentence = f"No planned sample; the smallest arm has {have:,} {unit}."
    elif complete:
        sentence = f"The plan of {planned:,} {unit} per arm is reached (smallest arm: {have:,})."
    else:
        share = have / planned if planned else 1.0
        sentence = (
            f"Planned {planned:,} {unit} per arm; the smallest arm has {have:,} ({share:.0%}), "
            f"so about {more:,} more per arm are needed."
        )
    if (
        info.verdict_rule == "sequential"
        and isinstance(comparison, CompareResult)
        and comparison.sequential_impressions_per_arm
    ):
        sentence += (
            " The always-valid rule would likely decide by about "
            f"{comparison.sequential_impressions_per_arm:,} impressions per arm."
        )
    return Progress(unit, planned, have, complete, more, sentence)


def _planned_p(c: ComparisonResult) -> float | None:
    """The p-value a single planned look uses: within slots, then post-level, then pooled."""
    if c.slots is not None and not c.slots.balanced:
        return c.slots.stratified.p_value if c.slots.stratified is not None else None
    if c.post_level is not None and c.post_level.p_value is not None:
        return c.post_level.p_value
    return c.p_value


def _planned_rates(result: CompareResult) -> tuple[str, list[str]]:
    """The overall verdict of one planned look, and each comparison's verdict."""
    from campaign.analysis.compare import overall_verdict
    from campaign.analysis.proportions import holm_adjust

    adjusted = holm_adjust([_planned_p(c) for c in result.comparisons])
    each = []
    for c, p in zip(result.comparisons, adjusted, strict=True):
        if p is not None and p <= result.alpha and c.diff:
            each.append("better" if c.diff > 0 else "worse")
        else:
            each.append("no_clear_difference" if p is not None else "not_enough_data")
    return overall_verdict(each), each


def _planned_sentence(result: CompareResult, verdict: str, each: list[str]) -> str:
    control = result.arms[0]
    if verdict in ("better", "worse"):
        names = [c.arm for c, v in zip(result.comparisons, each, strict=True) if v == verdict]
        arm = next(a for a in result.arms if a.name == names[0])
        more = "more" if verdict == "better" else "fewer"
        return (
            f"{', '.join(repr(n) for n in names)} got {more} clicks per impression than "
            f"'{control.name}' ({_per_thousand(arm.rate)} against {_per_thousand(control.rate)}), "
            "judged once at the planned sample with Holm's adjustment."
        )
    if verdict == "no_clear_difference":
        return (
            "No clear difference at the planned sample: no framing's Holm-adjusted p-value is "
            f"at or below {result.alpha:g}."
        )
    return "The framings cannot be compared fairly: their posts went out in different time slots."


def _per_post_decision(result: PerPostComparison, alpha: float) -> tuple[str, str]:
    clicks = result.metrics["clicks"]
    each = []
    for r in clicks.comparisons:
        if r.p_value_holm is not None and r.p_value_holm <= alpha and r.ratio is not None:
            each.append(("better" if r.ratio > 1 else "worse", r.arm))
        else:
            each.append(("no_clear_difference", r.arm))
    for verdict in ("better", "worse"):
        names = [a for v, a in each if v == verdict]
        if names:
            more = "more" if verdict == "better" else "fewer"
            return verdict, (
                f"{', '.join(repr(n) for n in names)} got {more} clicks per post than "
                f"'{result.control}', judged once at the planned number of posts."
            )
    return "no_clear_difference", (
        "No clear difference in clicks per post at the planned number of posts."
    )


def _per_post_summary(result: PerPostComparison) -> str:
    means = ", ".join(
        f"'{a.name}' {a.mean_per_post:.3g} clicks per post" for a in result.metrics["clicks"].arms
    )
    return f"Per post (no impressions on these networks): {means}."


def verdict(
    info: ExperimentInfo,
    totals: Sequence[ArmTotals],
    comparison: CompareResult | PerPostComparison | None,
    prog: Progress,
) -> tuple[str, str, str]:
    """(verdict, the verdict sentence, the engine's description) under the experiment's rule."""
    from campaign.analysis import CompareResult

    not_yet = (
        f"Not enough evidence yet — planned {prog.planned:,} {prog.unit} per arm, "
        f"have {prog.have:,}."
        if prog.planned is not None
        else "Not enough evidence yet."
    )
    if comparison is None:
        if not any(t.measured for t in totals):
            return "not_enough_data", NO_DATA, NO_DATA
        return "not_enough_data", not_yet, "Some arm has no measured post yet."
    if isinstance(comparison, CompareResult):
        if info.verdict_rule == "sequential":
            return comparison.verdict, comparison.summary, comparison.summary
        if not prog.complete:
            return "not_enough_data", not_yet, comparison.summary
        overall, each = _planned_rates(comparison)
        return overall, _planned_sentence(comparison, overall, each), comparison.summary
    summary = _per_post_summary(comparison)
    if not prog.complete:
        return "not_enough_data", not_yet, summary
    overall, sentence = _per_post_decision(comparison, info.alpha)
    return overall, sentence, summary


def arm_rows(
    arms: Sequence[ExperimentArm],
    totals: Sequence[ArmTotals],
    comparison: CompareResult | PerPostComparison | None,
    slot_counts: dict[int, int],
    tags: Callable[[ExperimentArm], tuple[str, ...]],
) -> list[ArmRow]:
    """One row per arm, with the engine's per-arm figures where it has them."""
    from campaign.analysis import CompareResult, PerPostComparison
    from campaign.services.experiment_reports import ArmRow

    rows = []
    for i, (arm, t) in enumerate(zip(arms, totals, strict=True)):
        per_impression = isinstance(comparison, CompareResult)
        engine = comparison.arms[i] if isinstance(comparison, CompareResult) else None
        counts = (
            comparison.metrics["clicks"].arms[i]
            if isinstance(comparison, PerPostComparison)
            else None
        )
        rows.append(
            ArmRow(
                name=arm.name,
                control=i == 0,
                variant=arm.variant.label if arm.variant is not None else None,
                tags=tags(arm),
                slots=slot_counts.get(arm.id, 0),
                posts_published=len(t.published),
                posts_measured=len(t.measured),
                impressions=t.impressions if per_impression else None,
                clicks=t.clicks,
                rate=engine.rate if engine else None,
                wilson_95=engine.wilson_95 if engine else None,
                prob_best=engine.prob_best if engine else None,
                clicks_per_post=counts.mean_per_post if counts else None,
                clicks_per_post_95=counts.mean_95 if counts else None,
            )
        )
    return rows


def _left_out_reasons(totals: Sequence[ArmTotals]) -> list[str]:
    no_views = over = no_figures = 0
    for t in totals:
        for p in t.published:
            if p.measured(t.metric):
                continue
            if p.clicks is None:
                no_figures += 1
            elif p.impressions is None:
                no_views += 1
            else:
                over += 1
    out = []
    if no_views:
        out.append(
            f"{no_views} post{'s' if no_views != 1 else ''} had no impressions at the report "
            "age (networks such as Mastodon and Bluesky report none), so "
            f"{'they were' if no_views != 1 else 'it was'} left out of the rates."
        )
    if over:
        out.append(
            f"{over} post{'s' if over != 1 else ''} had more clicks than impressions "
            "(the link was shared elsewhere too) and were left out of the rates."
        )
    if no_figures:
        out.append(
            f"{no_figures} published post{'s' if no_figures != 1 else ''} had no click figures "
            "at the report age yet and were left out."
        )
    return out


def warnings(
    info: ExperimentInfo,
    totals: Sequence[ArmTotals],
    comparison: CompareResult | PerPostComparison | None,
    left_out: int,
    now: dt.datetime,
) -> list[str]:
    """Caveats that apply: the engine's, posts left out, posts not yet published."""
    from campaign.analysis import CompareResult

    out: list[str] = []
    if isinstance(comparison, CompareResult):
        out.extend(comparison.warnings)
    elif comparison is not None:
        out.append(comparison.basis[0].upper() + comparison.basis[1:] + ".")
        out.extend(n[0].upper() + n[1:] + "." for n in comparison.notes)
    if left_out:
        out.extend(_left_out_reasons(totals))
    waiting = sum(len(t.post_ids) - len(t.published) for t in totals)
    if waiting:
        out.append(
            f"{waiting} post{'s' if waiting != 1 else ''} of this experiment "
            f"{'are' if waiting != 1 else 'is'} not published yet."
        )
    if info.verdict_rule == "planned" and info.status == "running" and comparison is not None:
        out.append(
            "The probabilities describe the data so far; with a planned sample the verdict "
            "waits for the plan, however the numbers look today."
        )
    return list(dict.fromkeys(out))


def method(metric: str) -> dict[str, str]:
    """The engine's method notes plus how the report read the stored figures."""
    from campaign.analysis import METHOD
    from campaign.services.experiment_reports import REPORT_METHOD

    notes = dict(METHOD) if metric == CLICKS_PER_IMPRESSION else {}
    notes.update(REPORT_METHOD)
    if metric == CLICKS_PER_IMPRESSION:
        notes.pop("per_post")
    return notes
