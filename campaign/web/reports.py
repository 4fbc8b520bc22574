"""Reports: the experiment calculator, an experiment's report and the framing report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, render_template, request

from campaign.db import read_only
from campaign.models import Role
from campaign.services import NotFound
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

if TYPE_CHECKING:
    from campaign.analysis import AnalysisInputError

# No prefix: the experiment report lives beside its experiment, at /experiments/<id>/report.
bp = Blueprint("reports", __name__)
MAX_ARMS, START_ARMS = 8, 2
_FIELD = re.compile(r"^arms\[(\d+)\]\.?(\w*)")


@dataclass
class Row:
    name: str = ""
    impressions: str = ""
    clicks: str = ""


def _rows_from_form(form: Any) -> list[Row]:
    names, views, clicks = (form.getlist(key) for key in ("name", "impressions", "clicks"))
    rows = [
        Row(n.strip(), v.strip(), c.strip()) for n, v, c in zip(names, views, clicks, strict=False)
    ]
    return rows[:MAX_ARMS] or [Row() for _ in range(START_ARMS)]


def _count(text: str) -> object:
    """A typed-in count as JSON would carry it; the engine names anything that is not one."""
    cleaned = text.replace(",", "").replace(" ", "")
    try:
        return int(cleaned)
    except ValueError:
        try:
            return float(cleaned)
        except ValueError:
            return text


def _payload(rows: list[Row]) -> dict[str, object]:
    arms = [
        {
            "name": row.name or f"Framing {i + 1}",
            "impressions": _count(row.impressions),
            "clicks": _count(row.clicks),
        }
        for i, row in enumerate(rows)
    ]
    return {"control_index": 0, "arms": arms}


def _plain_field(error: AnalysisInputError, rows: list[Row]) -> str:
    """'arms[1].clicks: ...' as 'Clicks for "Context": ...', for people rather than programs."""
    found = _FIELD.match(error.field)
    if not found:
        return error.message
    index, key = int(found.group(1)), found.group(2)
    name = rows[index].name if index < len(rows) and rows[index].name else f"framing {index + 1}"
    what = {"impressions": "Views", "clicks": "Clicks", "name": "The name"}.get(key, "The row")
    return f"{what} for “{name}”: {error.message}"


@bp.route("/reports/calculator", methods=["GET", "POST"])
@role_required(Role.STAFF)
def calculator() -> str:
    """Compare framings from typed-in counts; nothing is stored."""
    # numpy and scipy load on first use, so that workers and the CLI start quickly.
    from campaign.analysis import AnalysisInputError, compare_from_json

    result, error = None, None
    if request.method == "POST":
        rows = _rows_from_form(request.form)
        if request.form.get("action") == "add" and len(rows) < MAX_ARMS:
            rows.append(Row())
        elif request.form.get("action", "compare") == "compare":
            try:
                result = compare_from_json(_payload(rows))
            except AnalysisInputError as exc:
                error = _plain_field(exc, rows)
    else:
        rows = [Row() for _ in range(START_ARMS)]
    return render_template(
        "reports/calculator.html", rows=rows, result=result, error=error, max_arms=MAX_ARMS
    )


@bp.route("/experiments/<int:experiment_id>/report")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def experiment_report(experiment_id: int) -> str:
    """An experiment's report from stored figures; any member of the organisation may read it."""
    from campaign.services.experiment_reports import age_label, parse_age
    from campaign.services.experiment_reports import experiment_report as build

    error, age = None, None
    if request.args.get("age"):
        try:
            age = parse_age(request.args["age"])
        except ValueError as exc:
            error = str(exc)
    try:
        report = build(get_session(), experiment_id, member().organisation_id, now(), age)
    except NotFound:
        abort(404)
    chart = {
        "labels": [row.name for row in report.arms],
        "series": [
            {
                "name": "Plausible range, clicks per 1,000 views",
                "values": [
                    [round(row.wilson_95[0] * 1000, 2), round(row.wilson_95[1] * 1000, 2)]
                    if row.wilson_95
                    else None
                    for row in report.arms
                ],
            }
        ],
    }
    return render_template(
        "reports/experiment.html",
        report=report,
        chart=chart if any(row.wilson_95 for row in report.arms) else None,
        age_label=age_label,
        error=error,
    )


@bp.route("/reports/framing")
@read_only()  # before the role check: the member is read in it too
@role_required(Role.STAFF)
def framing() -> str:
    """Framing tags pooled across the organisation's experiments, shrunken and ranked."""
    from campaign.services.framing_report import framing_report

    reference = request.args.get("reference") or None
    error = None
    try:
        report = framing_report(get_session(), member().organisation_id, now(), reference)
    except ValueError as exc:
        error = str(exc)
        report = framing_report(get_session(), member().organisation_id, now())
    chart = None
    ranked = [row for row in report.league if row.shrunk_ratio_95 is not None]
    if ranked:
        chart = {
            "labels": [report.label(row.tag) for row in ranked],
            "series": [
                {
                    "name": "Plausible range of the shrunken ratio to the reference",
                    "values": [
                        [round(row.shrunk_ratio_95[0], 3), round(row.shrunk_ratio_95[1], 3)]
                        for row in ranked
                        if row.shrunk_ratio_95 is not None
                    ],
                }
            ],
        }
    return render_template("reports/framing.html", report=report, chart=chart, error=error)
