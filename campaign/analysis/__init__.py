"""Pure statistics for framing experiments: plain data in, plain data out.

Entry points:
- compare_from_json / compare: the experiment calculator (CONTRACT.md).
- meta_analysis, framing_tag_effects, league_table: pooling across experiments.
- compare_per_post: networks without impressions.
- thompson_allocation: what to post next.
"""

from __future__ import annotations

from campaign.analysis.bandit import Allocation, FramingCounts, thompson_allocation
from campaign.analysis.compare import compare
from campaign.analysis.counts import CountArm, PerPostComparison, PostCounts, compare_per_post
from campaign.analysis.league import LeagueRow, league_table
from campaign.analysis.meta import MetaAnalysis, Study, meta_analysis
from campaign.analysis.model import Arm, Post
from campaign.analysis.results import CompareResult, to_json
from campaign.analysis.sequential import TAU_RELATIVE
from campaign.analysis.tags import (
    Experiment,
    TagEffect,
    TagEffects,
    TaggedArm,
    framing_tag_effects,
)
from campaign.analysis.validate import AnalysisInputError, load_compare_json, parse_compare_request

METHOD = {
    "rate": "clicks / impressions, summed over posts",
    "wilson_95": "Wilson score interval, no continuity correction",
    "diff_95": "Newcombe hybrid score interval from the two Wilson intervals",
    "p_value": "two-sided pooled two-proportion z-test; p_value_holm is Holm across comparisons",
    "relative_lift_95": "log risk-ratio interval; blank when a count is zero",
    "fisher_p_value": (
        "Fisher's exact test, given only where an expected count is below 5 "
        "and the pair has at most 1,000,000 impressions"
    ),
    "prob_best": "Beta(1 + clicks, 1 + misses) posteriors, Gauss-Legendre quadrature",
    "verdict": (
        f"mixture SPRT with tau = {TAU_RELATIVE} x pooled click rate; better or worse only when "
        "the Holm-adjusted 1/likelihood-ratio is at most alpha, which stays valid however often "
        "the results are checked"
    ),
    "required_impressions_per_arm": (
        "Evan Miller's two-proportion formula, 80% power, two-sided alpha, for the observed lift "
        "(50% when none); sequential_impressions_per_arm is the same for the verdict rule"
    ),
}


def compare_from_json(data: object) -> dict[str, object]:
    """Validate decoded JSON and return the compare contract's output (no NaN, no inf)."""
    arms, control_index, alpha = parse_compare_request(data)
    return to_json(compare(arms, control_index, alpha), METHOD)


__all__ = [
    "METHOD",
    "Allocation",
    "AnalysisInputError",
    "Arm",
    "CompareResult",
    "CountArm",
    "Experiment",
    "FramingCounts",
    "LeagueRow",
    "MetaAnalysis",
    "PerPostComparison",
    "Post",
    "PostCounts",
    "Study",
    "TagEffect",
    "TagEffects",
    "TaggedArm",
    "compare",
    "compare_from_json",
    "compare_per_post",
    "framing_tag_effects",
    "league_table",
    "load_compare_json",
    "meta_analysis",
    "parse_compare_request",
    "thompson_allocation",
    "to_json",
]
