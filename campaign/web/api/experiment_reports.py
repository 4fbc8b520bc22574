"""GET /api/v1/experiments/<id>/report and GET /api/v1/reports/framing (scope: read)."""

from __future__ import annotations

from typing import Any, Literal

from flask import request
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as SpecResponse

from campaign.services import NotFound
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.errors import ApiError
from campaign.web.api.schemas import CompareResponse, ErrorResponse
from campaign.web.context import get_session, now

_ERRORS = {f"HTTP_{code}": ErrorResponse for code in (401, 403, 404, 422)}


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age: str | None = Field(
        default=None, description="Post age to read figures at (24h, 7d, 90m); default: the plan's"
    )


class ExperimentReportOut(CompareResponse):
    """The compare contract's shape, plus the experiment and how the report read its data."""

    model_config = ConfigDict(extra="allow")

    experiment: dict[str, Any]
    metric: Literal["clicks_per_impression", "clicks_per_post"]
    age_seconds: int
    verdict_sentence: str
    progress: dict[str, Any]
    posts_left_out: int
    warnings: list[str]


class FramingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str | None = Field(
        default=None, max_length=200, description="Tag to compare with; default: the usual control"
    )


class FramingRowOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    rank: int | None
    tag: str
    label: str
    ratio: float | None
    shrunk_ratio: float | None
    shrunk_ratio_95: list[float] | None
    experiments: int
    clicks: int
    impressions: int


class FramingReportOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    reference: str | None
    measure: str | None
    method: str | None
    league: list[FramingRowOut]
    effects: list[dict[str, Any]]
    experiments: list[str]
    notes: list[str]


@bp.get("/experiments/<int:experiment_id>/report")
@spec.validate(
    query=ReportQuery,
    resp=SpecResponse(HTTP_200=ExperimentReportOut, **_ERRORS),
    tags=["experiments"],
    security={"bearer": []},
)
@token_required("read")
def experiment_report(experiment_id: int) -> Any:
    """An experiment's report from stored figures: the compare contract plus the experiment,
    per-arm posts published and measured, progress towards the plan and the verdict under the
    experiment's own rule. Scope: read."""
    from campaign.services.experiment_report_output import report_json
    from campaign.services.experiment_reports import experiment_report as build
    from campaign.services.experiment_reports import parse_age

    query = ReportQuery.model_validate(request.args.to_dict())
    try:
        age = parse_age(query.age) if query.age is not None else None
    except ValueError as exc:
        raise ApiError(422, f"age: {exc}", details={"field": "age"}) from exc
    try:
        report = build(get_session(), experiment_id, current_token().organisation_id, now(), age)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return report_json(report)


@bp.get("/reports/framing")
@spec.validate(
    query=FramingQuery,
    resp=SpecResponse(HTTP_200=FramingReportOut, **_ERRORS),
    tags=["experiments"],
    security={"bearer": []},
)
@token_required("read")
def framing_report() -> Any:
    """Each framing tag's pooled effect across running and concluded experiments, ranked with
    shrinkage so that a tag with little data cannot top the table. Scope: read."""
    from campaign.services.experiment_report_output import framing_json
    from campaign.services.framing_report import framing_report as build

    query = FramingQuery.model_validate(request.args.to_dict())
    try:
        report = build(get_session(), current_token().organisation_id, now(), query.reference)
    except ValueError as exc:
        raise ApiError(422, f"reference: {exc}", details={"field": "reference"}) from exc
    return framing_json(report)
