"""Typed results of the experiment calculator and their JSON form."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from campaign.analysis.bayes import BetaPosterior
from campaign.analysis.posts import PostLevel, SlotAnalysis

VERDICTS = ("not_enough_data", "no_clear_difference", "better", "worse")


@dataclass(frozen=True)
class ArmResult:
    """Per-arm numbers: rate, Wilson interval, posterior, P(best) and expected loss."""

    name: str
    impressions: int
    clicks: int
    posts: int
    rate: float | None
    wilson_95: tuple[float, float]
    posterior: BetaPosterior
    credible_95: tuple[float, float]
    prob_best: float
    expected_loss: float


@dataclass(frozen=True)
class Plan:
    """Sample sizes for one comparison: fixed-horizon, and for the sequential rule."""

    baseline: float | None
    lift: float
    required: int | None
    sequential: int | None
    sequential_for_default_lift: int | None


@dataclass(frozen=True)
class ComparisonResult:
    """One arm against the control."""

    arm: str
    diff: float | None
    diff_95: tuple[float, float] | None
    p_value: float | None
    p_value_holm: float | None
    fisher_p_value: float | None
    relative_lift: float | None
    relative_lift_95: tuple[float, float] | None
    prob_beats_control: float
    p_value_sequential: float
    p_value_sequential_holm: float
    verdict: str
    plan: Plan
    post_level: PostLevel | None
    slots: SlotAnalysis | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class CompareResult:
    """Everything the calculator returns; to_json gives the contract's shape."""

    control: str
    alpha: float
    arms: tuple[ArmResult, ...]
    comparisons: tuple[ComparisonResult, ...]
    lead: int
    verdict: str
    summary: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def required_impressions_per_arm(self) -> int | None:
        """Fixed-horizon impressions per arm for the leading comparison's planning lift."""
        return self.comparisons[self.lead].plan.required

    @property
    def sequential_impressions_per_arm(self) -> int | None:
        """Impressions per arm at which the sequential rule would likely decide."""
        return self.comparisons[self.lead].plan.sequential


def _plain(value: object, problems: list[str], path: str) -> object:
    """Dataclasses to dicts, tuples to lists, and any non-finite float to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), problems, f"{path}.{f.name}")
            for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {k: _plain(v, problems, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, problems, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(path.lstrip("."))
        return None
    return value


def _arm_json(arm: ArmResult) -> dict[str, object]:
    return {
        "name": arm.name,
        "rate": arm.rate,
        "wilson_95": arm.wilson_95,
        "prob_best": arm.prob_best,
        "expected_loss": arm.expected_loss,
        "impressions": arm.impressions,
        "clicks": arm.clicks,
        "posts": arm.posts,
        "posterior": {"alpha": arm.posterior.alpha, "beta": arm.posterior.beta},
        "posterior_mean": arm.posterior.mean,
        "credible_95": arm.credible_95,
    }


def _comparison_json(c: ComparisonResult) -> dict[str, object]:
    return {
        "arm": c.arm,
        "diff": c.diff,
        "diff_95": c.diff_95,
        "p_value": c.p_value,
        "p_value_holm": c.p_value_holm,
        "relative_lift": c.relative_lift,
        "relative_lift_95": c.relative_lift_95,
        "prob_beats_control": c.prob_beats_control,
        "verdict": c.verdict,
        "p_value_sequential": c.p_value_sequential,
        "p_value_sequential_holm": c.p_value_sequential_holm,
        "fisher_p_value": c.fisher_p_value,
        "required_impressions_per_arm": c.plan.required,
        "sequential_impressions_per_arm": c.plan.sequential,
        "planning_lift": c.plan.lift,
        "post_level": c.post_level,
        "slots": c.slots,
        "notes": c.notes,
    }


def to_json(result: CompareResult, method: dict[str, str] | None = None) -> dict[str, object]:
    """The compare contract's JSON object: no NaN or infinity anywhere."""
    raw: dict[str, object] = {
        "control": result.control,
        "alpha": result.alpha,
        "arms": [_arm_json(a) for a in result.arms],
        "comparisons": [_comparison_json(c) for c in result.comparisons],
        "required_impressions_per_arm": result.required_impressions_per_arm,
        "sequential_impressions_per_arm": result.sequential_impressions_per_arm,
        "verdict": result.verdict,
        "summary": result.summary,
        "warnings": list(result.warnings),
        "method": method or {},
    }
    problems: list[str] = []
    out = _plain(raw, problems, "")
    assert isinstance(out, dict)
    if problems:
        # Never expected; a blank figure with a warning beats invalid JSON or a 500.
        warnings = out["warnings"]
        assert isinstance(warnings, list)
        warnings.append("internal: some figures could not be computed: " + ", ".join(problems))
    return out
