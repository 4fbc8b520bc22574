"""The stateless experiment calculator: POST /api/v1/analysis/compare stores nothing."""

from __future__ import annotations

from typing import Any

from flask import request
from spectree import Response as SpecResponse

from campaign.web.api import bp, spec
from campaign.web.api.auth import token_required
from campaign.web.api.errors import ApiError
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.schemas import CompareRequest, CompareResponse, ErrorResponse


@bp.post("/analysis/compare")
@spec.validate(
    json=CompareRequest,
    headers=IdempotencyHeaders,
    resp=SpecResponse(
        HTTP_200=CompareResponse,
        HTTP_400=ErrorResponse,
        HTTP_401=ErrorResponse,
        HTTP_403=ErrorResponse,
        HTTP_409=ErrorResponse,
        HTTP_422=ErrorResponse,
    ),
    tags=["analysis"],
    security={"bearer": []},
    # The engine validates, so that errors name the exact field (arms[1].clicks).
    skip_validation=True,
)
@token_required("read")
@idempotent
def compare() -> Any:
    """Compare framings: rates, intervals, tests against the control and a peeking-safe verdict."""
    # numpy and scipy load on first use, so that workers and the CLI start quickly.
    from campaign.analysis import AnalysisInputError, compare_from_json, load_compare_json

    try:
        return compare_from_json(load_compare_json(request.get_data()))
    except AnalysisInputError as exc:
        raise ApiError(422, str(exc), details={"field": exc.field}) from exc
