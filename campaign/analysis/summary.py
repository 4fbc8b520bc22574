"""Plain-language summary sentence and warnings for a comparison result."""

from __future__ import annotations

from collections.abc import Sequence

from campaign.analysis.model import Arm
from campaign.analysis.proportions import small_cells
from campaign.analysis.results import ArmResult, CompareResult, ComparisonResult
from campaign.analysis.sequential import MIN_CLICKS_TO_DECIDE

# A post-level variance this many times the binomial one is worth telling people about.
NOTABLE_VARIANCE_RATIO = 1.5


def _pct(rate: float | None) -> str:
    return "no impressions yet" if rate is None else f"{rate * 100:.3g}%"


def _names(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _arm(result: CompareResult, name: str) -> ArmResult:
    return next(a for a in result.arms if a.name == name)


def _decided(result: CompareResult, verdict: str) -> str:
    """Sentence body for a better or worse verdict."""
    winners = [c for c in result.comparisons if c.verdict == verdict]
    head = result.comparisons[result.lead]
    control = _arm(result, result.control)
    more = "more" if verdict == "better" else "fewer"
    where = " within the same time slots" if _timing_skewed(head) else ""
    text = (
        f"{_names([c.arm for c in winners])} got {more} clicks than '{result.control}'{where} "
        f"('{head.arm}' {_pct(_arm(result, head.arm).rate)} against {_pct(control.rate)} "
        "of impressions), and the difference holds up however often the results have been checked"
    )
    losers = [c.arm for c in result.comparisons if c.verdict == "worse"]
    if verdict == "better" and losers:
        text += f", while {_names(losers)} did worse"
    return text


def _timing_skewed(c: ComparisonResult) -> bool:
    """Whether unbalanced slots make the raw totals a poor guide to this comparison."""
    return c.slots is not None and not c.slots.balanced and c.slots.stratified is not None


def _undecided(result: CompareResult, c: ComparisonResult) -> str:
    """Sentence body when no comparison is decided."""
    control = _arm(result, result.control)
    arm = _arm(result, c.arm)
    n = min(control.impressions, arm.impressions)
    if c.slots is not None and c.slots.stratified is None:
        return (
            f"'{c.arm}' and '{result.control}' cannot be compared fairly because their posts "
            f"went out in different time slots ({c.slots.description})"
        )
    if c.plan.baseline is None:
        return "Too early to tell: there are no clicks yet, so the rates cannot be compared"
    rates = f"'{c.arm}' is at {_pct(arm.rate)} and '{result.control}' at {_pct(control.rate)}"
    if _timing_skewed(c) and c.slots is not None and c.slots.stratified is not None:
        ahead = "ahead" if c.slots.stratified.diff > 0 else "behind"
        rates += f" (though within time slots '{c.arm}' is {ahead})"
    observed = c.relative_lift is not None and c.relative_lift > 0
    if observed:
        target = f"confirm a lift as large as the one seen ({c.plan.lift:+.0%})"
    else:
        target = f"detect a {c.plan.lift:.0%} lift"
    if c.plan.sequential is None:
        needed = f"no realistic number of impressions would {target}"
    elif c.plan.sequential > n:
        needed = (
            f"about {c.plan.sequential - n:,} more impressions per arm would be needed to {target}"
        )
    else:
        needed = f"each arm needs at least {MIN_CLICKS_TO_DECIDE} clicks before any verdict"
    if c.verdict == "no_clear_difference":
        text = (
            f"No clear difference: {rates}; with {n:,} impressions per arm a 50% lift would "
            "very likely have shown by now"
        )
        later = observed and (c.plan.sequential is None or c.plan.sequential > n)
        return text + (f", and {needed}" if later else "")
    return f"Too early to tell: {rates}, and {needed}"


def summarise(result: CompareResult) -> str:
    """One plain sentence: what the numbers mean and, if undecided, how much more data."""
    if result.verdict in ("better", "worse"):
        body = _decided(result, result.verdict)
    else:
        body = _undecided(result, result.comparisons[result.lead])
    notes = dict.fromkeys(n for c in result.comparisons for n in c.notes)
    if notes:
        body += " (" + "; ".join(notes) + ")"
    return body + "."


def _post_warnings(arms: Sequence[Arm]) -> list[str]:
    single = [a.name for a in arms if len(a.posts) == 1]
    if all(not a.posts for a in arms):
        return [
            "Only totals were given, so variation between posts cannot be estimated; "
            "a single lucky post can dominate."
        ]
    if single:
        return [
            f"{_names(single)} had only one post, so variation between posts cannot be "
            "estimated; a single lucky post can dominate."
        ]
    return []


def _comparison_warnings(result: CompareResult, c: ComparisonResult) -> list[str]:
    out = []
    pl = c.post_level
    if pl is not None:
        for name, ratio in (
            (result.control, pl.control_variance_ratio),
            (c.arm, pl.arm_variance_ratio),
        ):
            if ratio is not None and ratio > NOTABLE_VARIANCE_RATIO:
                out.append(
                    f"Clicks on '{name}' varied between posts {ratio:.1f} times more than chance "
                    "alone explains, so its verdict uses the post-level variance."
                )
    slots = c.slots
    if slots is not None and not slots.balanced:
        if slots.stratified is None:
            out.append(
                f"'{c.arm}' and '{result.control}' share no time slot ({slots.description}), "
                "so timing and framing cannot be told apart."
            )
        else:
            out.append(
                f"Time slots are unbalanced: {slots.description}; part of any raw difference "
                "may be timing, so the verdict compares within slots (Mantel–Haenszel)."
            )
    control = _arm(result, result.control)
    arm = _arm(result, c.arm)
    if small_cells(control.clicks, control.impressions, arm.clicks, arm.impressions):
        safer = (
            "Fisher's exact p-value (fisher_p_value) is the safer p-value here"
            if c.fisher_p_value is not None
            else "treat its p-value with caution"
        )
        out.append(f"'{c.arm}' against '{result.control}' rests on very few clicks; {safer}.")
    return out


def warnings_for(result: CompareResult, arms: Sequence[Arm], control_index: int) -> tuple[str, ...]:
    """Caveats that apply to this result, each a full sentence."""
    out = _post_warnings(arms)
    with_slot = [p.slot is not None for a in arms for p in a.posts]
    if any(with_slot) and not all(with_slot):
        out.append("Some posts have no time slot, so timing could not be allowed for.")
    for c in result.comparisons:
        out.extend(_comparison_warnings(result, c))
        out.extend(n[0].upper() + n[1:] + "." for n in c.notes)
    if len(result.comparisons) > 1:
        out.append(
            f"{len(result.comparisons)} framings were compared with '{arms[control_index].name}'; "
            "the p-values and the verdict allow for that (Holm)."
        )
    return tuple(dict.fromkeys(out))
