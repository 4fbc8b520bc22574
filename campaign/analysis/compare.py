"""The experiment calculator: every number in the compare contract, from arm totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from campaign.analysis import proportions as prop
from campaign.analysis.bayes import BetaPosterior, best_arm, prob_beats
from campaign.analysis.model import Arm
from campaign.analysis.posts import PostLevel, SlotAnalysis, post_level_comparison, slot_analysis
from campaign.analysis.results import ArmResult, CompareResult, ComparisonResult, Plan
from campaign.analysis.sample_size import DEFAULT_LIFT, required_impressions
from campaign.analysis.sequential import (
    MIN_CLICKS_TO_DECIDE,
    sequential_p_value,
    sequential_sample_size,
)
from campaign.analysis.summary import summarise, warnings_for


@dataclass(frozen=True)
class Evidence:
    """What the sequential rule sees for one comparison."""

    diff: float
    p_value: float
    comparable: bool


def evidence(
    control: Arm, arm: Arm, post_level: PostLevel | None, slots: SlotAnalysis | None
) -> Evidence:
    """Difference and always-valid p-value, within slot and over posts where known."""
    if slots is not None and slots.stratified is None:
        return Evidence(0.0, 1.0, comparable=False)
    if not control.impressions or not arm.impressions:
        return Evidence(0.0, 1.0, comparable=True)
    if slots is not None and slots.stratified is not None:
        strat = slots.stratified
        diff, var, pooled = strat.diff, strat.null_variance, strat.pooled_rate
    else:
        pooled = (control.clicks + arm.clicks) / (control.impressions + arm.impressions)
        var = pooled * (1 - pooled) * (1 / control.impressions + 1 / arm.impressions)
        diff = arm.clicks / arm.impressions - control.clicks / control.impressions
    if post_level is not None:
        # Posts that vary more than binomial widen the test; they never narrow it.
        var = max(var, post_level.diff_se**2)
    return Evidence(diff, sequential_p_value(diff, var, pooled), comparable=True)


def plan(control: Arm, arm: Arm, lift: float | None, alpha: float, m: int) -> Plan:
    """Planning sizes at the control's rate (the pair's pooled rate if it has no clicks)."""
    if control.clicks:
        baseline: float | None = control.clicks / control.impressions
    elif arm.clicks:
        baseline = arm.clicks / (control.impressions + arm.impressions)
    else:
        baseline = None
    target = lift if lift is not None and lift > 0 else DEFAULT_LIFT
    if baseline is None:
        return Plan(None, target, None, None, None)
    return Plan(
        baseline,
        target,
        required_impressions(baseline, target, alpha),
        sequential_sample_size(baseline, target, alpha, m),
        sequential_sample_size(baseline, DEFAULT_LIFT, alpha, m),
    )


def verdict_for(control: Arm, arm: Arm, ev: Evidence, rejected: bool, sizes: Plan) -> str:
    """Better/worse only on a sequential rejection; otherwise say whether data suffices."""
    if not ev.comparable:
        return "not_enough_data"
    if rejected and ev.diff != 0 and control.clicks + arm.clicks >= MIN_CLICKS_TO_DECIDE:
        return "better" if ev.diff > 0 else "worse"
    needed = sizes.sequential_for_default_lift
    if (
        min(control.clicks, arm.clicks) < MIN_CLICKS_TO_DECIDE
        or needed is None
        or min(control.impressions, arm.impressions) < needed
    ):
        return "not_enough_data"
    return "no_clear_difference"


def overall_verdict(verdicts: Sequence[str]) -> str:
    """Any arm better wins; else any worse; else undecided unless every arm has enough data."""
    for verdict in ("better", "worse"):
        if verdict in verdicts:
            return verdict
    if all(v == "no_clear_difference" for v in verdicts):
        return "no_clear_difference"
    return "not_enough_data"


def _arm_results(arms: Sequence[Arm]) -> tuple[ArmResult, ...]:
    posteriors = [BetaPosterior.from_counts(a.clicks, a.impressions) for a in arms]
    best = best_arm(posteriors)
    return tuple(
        ArmResult(
            name=a.name,
            impressions=a.impressions,
            clicks=a.clicks,
            posts=len(a.posts),
            rate=a.rate,
            wilson_95=prop.wilson_interval(a.clicks, a.impressions),
            posterior=post,
            credible_95=post.credible_interval(),
            prob_best=best.prob_best[i],
            expected_loss=best.expected_loss[i],
        )
        for i, (a, post) in enumerate(zip(arms, posteriors, strict=True))
    )


def _notes(control: Arm, arm: Arm, z: prop.TestResult, sizes: Plan) -> tuple[str, ...]:
    """Reasons for each figure left blank."""
    notes = []
    if not control.impressions or not arm.impressions:
        empty = control.name if not control.impressions else arm.name
        notes.append(f"'{empty}' has no impressions yet, so the difference is blank")
    elif z.reason:
        notes.append(f"there is no p-value for '{arm.name}' because {z.reason}")
    if control.impressions and not control.clicks:
        notes.append(f"the relative lift is blank because '{control.name}' has no clicks")
    elif arm.impressions and not arm.clicks:
        notes.append(f"the lift's range for '{arm.name}' is blank because it has no clicks")
    if sizes.baseline is None:
        notes.append("with no clicks yet, the sample size needed is unknown")
    elif sizes.required is None:
        notes.append("the planning lift would push the rate past 100%, so there is no sample size")
    return tuple(notes)


def _one(
    control: Arm, arm: Arm, arms: tuple[ArmResult, ArmResult], alpha: float, m: int
) -> tuple[ComparisonResult, Evidence]:
    """One comparison; Holm-adjusted fields and the verdict are filled in later."""
    args = (control.clicks, control.impressions, arm.clicks, arm.impressions)
    z = prop.pooled_z_test(*args)
    lift = prop.relative_lift(*args)
    post_level = post_level_comparison(control, arm)
    slots = slot_analysis(control, arm)
    sizes = plan(control, arm, lift, alpha, m)
    ev = evidence(control, arm, post_level, slots)
    diff = None
    if control.impressions and arm.impressions:
        diff = arm.clicks / arm.impressions - control.clicks / control.impressions
    result = ComparisonResult(
        arm=arm.name,
        diff=diff,
        diff_95=prop.newcombe_interval(*args),
        p_value=z.p_value,
        p_value_holm=None,
        fisher_p_value=prop.fisher_exact_p(*args),
        relative_lift=lift,
        relative_lift_95=prop.log_rr_interval(*args) if lift is not None else None,
        prob_beats_control=prob_beats(arms[0].posterior, arms[1].posterior),
        p_value_sequential=ev.p_value,
        p_value_sequential_holm=ev.p_value,
        verdict="not_enough_data",
        plan=sizes,
        post_level=post_level,
        slots=slots,
        notes=_notes(control, arm, z, sizes),
    )
    return result, ev


def _lead(
    comparisons: Sequence[ComparisonResult],
    arm_results: Sequence[ArmResult],
    others: Sequence[int],
    verdict: str,
) -> int:
    """The comparison the headline follows: it shares the overall verdict.

    For better or worse, the largest difference; otherwise the best-looking arm.
    """
    candidates = [j for j, c in enumerate(comparisons) if c.verdict == verdict]
    if verdict in ("better", "worse"):
        return max(candidates, key=lambda j: (abs(comparisons[j].diff or 0.0), -j))
    return max(candidates, key=lambda j: (arm_results[others[j]].rate or 0.0, -j))


def compare(arms: Sequence[Arm], control_index: int = 0, alpha: float = 0.05) -> CompareResult:
    """Compare 2 to 8 validated arms against the control at one look."""
    control = arms[control_index]
    others = [i for i in range(len(arms)) if i != control_index]
    m = len(others)
    arm_results = _arm_results(arms)
    pairs = [
        _one(control, arms[i], (arm_results[control_index], arm_results[i]), alpha, m)
        for i in others
    ]
    holm = prop.holm_adjust([c.p_value for c, _ in pairs])
    seq_holm = prop.holm_adjust([ev.p_value for _, ev in pairs])
    comparisons = []
    for j, (c, ev) in enumerate(pairs):
        seq_adj = seq_holm[j]
        assert seq_adj is not None  # sequential p-values are always defined
        comparisons.append(
            replace(
                c,
                p_value_holm=holm[j],
                p_value_sequential_holm=seq_adj,
                verdict=verdict_for(control, arms[others[j]], ev, seq_adj <= alpha, c.plan),
            )
        )
    verdict = overall_verdict([c.verdict for c in comparisons])
    result = CompareResult(
        control=control.name,
        alpha=alpha,
        arms=arm_results,
        comparisons=tuple(comparisons),
        lead=_lead(comparisons, arm_results, others, verdict),
        verdict=verdict,
    )
    return replace(
        result,
        summary=summarise(result),
        warnings=warnings_for(result, arms, control_index),
    )
