"""`campaign report EXPERIMENT_ID`: the body of the command, outside the crowded cli module."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from campaign.models import Experiment
from campaign.services import NotFound
from campaign.services.experiment_report_output import report_csv, report_json, report_text
from campaign.services.experiment_reports import experiment_report, parse_age
from campaign.state import AppState


def render_report(
    st: AppState, experiment_id: int, fmt: str, age: str | None, now: dt.datetime
) -> str:
    """The report as text, JSON or CSV; NotFound or ValueError with a message for bad input."""
    age_seconds = parse_age(age) if age is not None else None
    with st.session_factory() as session:
        organisation_id = session.scalar(
            select(Experiment.organisation_id).where(Experiment.id == experiment_id)
        )
        if organisation_id is None:
            raise NotFound(f"there is no experiment {experiment_id}")
        report = experiment_report(session, experiment_id, organisation_id, now, age_seconds)
    if fmt == "json":
        return json.dumps(report_json(report), indent=2, sort_keys=True, allow_nan=False) + "\n"
    if fmt == "csv":
        return report_csv(report)
    return report_text(report)
