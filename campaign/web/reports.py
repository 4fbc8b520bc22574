"""Reports: the experiment calculator (the full per-experiment reports arrive with experiments)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, render_template, request

from campaign.models import Role
from campaign.web.auth import role_required

if TYPE_CHECKING:
    from campaign.analysis import AnalysisInputError

bp = Blueprint("reports", __name__, url_prefix="/reports")
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


@bp.route("/calculator", methods=["GET", "POST"])
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
