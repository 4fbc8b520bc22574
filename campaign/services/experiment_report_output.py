"""An experiment report as JSON (the compare contract plus experiment fields), CSV and text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from campaign.services import csv_files
from campaign.services.experiment_reports import ExperimentReport, age_label
from campaign.services.framing_report import FramingReport


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, datetimes to RFC 3339, non-finite floats to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _per_post_json(report: ExperimentReport) -> dict[str, Any]:
    """The compare contract's keys for a per-post comparison, and the engine's full result."""
    from campaign.analysis import PerPostComparison

    comparison = report.comparison
    arms = [
        {
            "name": row.name,
            "rate": None,
            "wilson_95": None,
            "prob_best": None,
            "expected_loss": None,
            "clicks": row.clicks,
            "posts": row.posts_measured,
            "clicks_per_post": row.clicks_per_post,
            "clicks_per_post_95": row.clicks_per_post_95,
        }
        for row in report.arms
    ]
    comparisons: list[dict[str, Any]] = []
    if isinstance(comparison, PerPostComparison):
        clicks = comparison.metrics["clicks"]
        comparisons = [
            {
                "arm": r.arm,
                "diff": None,
                "diff_95": None,
                "p_value": r.p_value,
                "p_value_holm": r.p_value_holm,
                "relative_lift": None if r.ratio is None else r.ratio - 1,
                "relative_lift_95": None
                if r.ratio_95 is None
                else [r.ratio_95[0] - 1, r.ratio_95[1] - 1],
                "prob_beats_control": None,
            }
            for r in clicks.comparisons
        ]
    return {
        "control": report.arms[0].name if report.arms else None,
        "alpha": report.experiment.alpha,
        "arms": arms,
        "comparisons": comparisons,
        "required_impressions_per_arm": None,
        "per_post": _plain(comparison),
    }


def report_json(report: ExperimentReport) -> dict[str, Any]:
    """The compare contract's shape (arms, comparisons, verdict, summary...) plus the report."""
    from campaign.analysis import CompareResult, to_json

    if isinstance(report.comparison, CompareResult):
        out: dict[str, Any] = to_json(report.comparison, report.method)
        out["engine_verdict"] = out["verdict"]
        for arm, row in zip(out["arms"], report.arms, strict=True):
            arm.update(posts_published=row.posts_published, posts_measured=row.posts_measured)
    else:
        out = _per_post_json(report)
        out["engine_verdict"] = None
        out["method"] = report.method
    out.update(
        verdict=report.verdict,
        verdict_sentence=report.verdict_sentence,
        summary=report.summary,
        warnings=list(report.warnings),
        experiment=_plain(report.experiment),
        metric=report.metric,
        age_seconds=report.age_seconds,
        age=age_label(report.age_seconds),
        progress=_plain(report.progress),
        posts_left_out=report.left_out,
        arm_details=[_plain(row) for row in report.arms],
    )
    return dict(_plain(out))


def _num(value: float | int | None, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


CSV_HEADER = (
    "experiment_id",
    "experiment",
    "arm",
    "control",
    "posts_published",
    "posts_measured",
    "impressions",
    "clicks",
    "rate",
    "wilson_low",
    "wilson_high",
    "clicks_per_post",
    "prob_best",
    "diff",
    "diff_low",
    "diff_high",
    "p_value",
    "p_value_holm",
    "relative_lift",
    "prob_beats_control",
    "verdict",
)


def report_csv(report: ExperimentReport) -> str:
    """One line per arm (comparison columns blank for the control); formulas defused."""
    from campaign.analysis import CompareResult

    by_arm: dict[str, list[str]] = {}
    if isinstance(report.comparison, CompareResult):
        for c in report.comparison.comparisons:
            by_arm[c.arm] = [
                _num(c.diff),
                _num(c.diff_95[0] if c.diff_95 else None),
                _num(c.diff_95[1] if c.diff_95 else None),
                _num(c.p_value),
                _num(c.p_value_holm),
                _num(c.relative_lift),
                _num(c.prob_beats_control),
            ]
    lines: list[list[str]] = [list(CSV_HEADER)]
    exp = report.experiment
    for row in report.arms:
        lines.append(
            [
                str(exp.id),
                exp.name,
                row.name,
                "yes" if row.control else "no",
                str(row.posts_published),
                str(row.posts_measured),
                _num(row.impressions),
                str(row.clicks),
                _num(row.rate),
                _num(row.wilson_95[0] if row.wilson_95 else None),
                _num(row.wilson_95[1] if row.wilson_95 else None),
                _num(row.clicks_per_post),
                _num(row.prob_best),
                *by_arm.get(row.name, [""] * 7),
                report.verdict if row.control else "",
            ]
        )
    return csv_files.write(lines)


def report_text(report: ExperimentReport) -> str:
    """The report for a terminal: verdict, per-arm lines, progress, warnings."""
    exp = report.experiment
    lines = [
        f"Experiment {exp.id}: {exp.name} ({exp.status}, {exp.verdict_rule} verdict rule)",
        f"Primary metric: {report.metric.replace('_', ' ')}, at {age_label(report.age_seconds)}",
        "",
        f"{report.heading}: {report.verdict_sentence}",
    ]
    if report.summary and report.summary != report.verdict_sentence:
        lines.append(f"What the numbers say now: {report.summary}")
    lines.append(report.progress.sentence)
    lines.append("")
    no_data = not any(row.posts_measured for row in report.arms)
    for row in report.arms:
        label = f"{row.name}{' (control)' if row.control else ''}"
        posts = f"{row.posts_measured}/{row.posts_published} posts measured"
        if no_data:
            lines.append(f"  {label}: no data yet; {posts}")
        elif row.rate is not None or row.impressions is not None:
            rate = "—" if row.rate is None else f"{row.rate * 1000:.3g}"
            # An arm without impressions has no range to speak of (the engine's is 0 to 100%).
            interval = (
                f" ({row.wilson_95[0] * 1000:.3g} to {row.wilson_95[1] * 1000:.3g})"
                if row.wilson_95 and row.impressions
                else ""
            )
            best = "" if row.prob_best is None else f", {row.prob_best:.0%} chance of being best"
            lines.append(
                f"  {label}: {row.clicks:,} clicks from {row.impressions or 0:,} impressions, "
                f"{rate} per 1,000{interval}{best}; {posts}"
            )
        else:
            mean = "—" if row.clicks_per_post is None else f"{row.clicks_per_post:.3g}"
            lines.append(f"  {label}: {row.clicks:,} clicks, {mean} per post; {posts}")
    if report.warnings:
        lines.append("")
        lines.extend(f"! {w}" for w in report.warnings)
    return "\n".join(lines) + "\n"


def framing_json(report: FramingReport) -> dict[str, Any]:
    """The framing report: the shrunken league table, each tag's pooled effect, and notes."""
    effects = report.effects
    league = [dict(_plain(row), label=report.label(row.tag)) for row in report.league]
    return dict(
        _plain(
            {
                "reference": report.reference,
                "measure": effects.measure if effects else None,
                "method": effects.method if effects else None,
                "league": league,
                "effects": [
                    dict(_plain(e), label=report.label(e.tag))
                    for e in (effects.effects if effects else ())
                ],
                "experiments": list(report.experiments),
                "notes": [*report.left_out, *(effects.notes if effects else ())],
            }
        )
    )
