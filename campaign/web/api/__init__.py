"""The JSON API under /api/v1, documented by spectree as OpenAPI 3.1 at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from spectree import SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData

from campaign.web.api.errors import ApiError


def _raise_validation(_req: Any, _resp: Any, error: Any, _instance: Any, *_rest: Any) -> None:
    # spectree calls this before the view; turn its validation errors into our error shape.
    if error is not None:
        details = {
            ".".join(str(part) for part in item.get("loc", ())): item.get("msg", "")
            for item in error.errors()
        }
        first = next(iter(details.items()), ("body", "invalid"))
        raise ApiError(422, f"{first[0]}: {first[1]}", details=details)


spec = SpecTree(
    "flask",
    title="campaign API",
    version="1",
    description="Campaigns, posts, experiments and vacancy alerts for careers services.",
    # spectree skips routes under its own path, so it gets a private one; the document itself is
    # served by the view below at /api/v1/openapi.json.
    path="_spectree",
    filename="openapi.json",
    page_templates={},
    mode="strict",
    security_schemes=[
        SecurityScheme(
            name="bearer",
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="bearer",
                description="An API token from Settings, API tokens",
            ),
        ),
    ],
    before=_raise_validation,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document for every operation under /api/v1."""
    return spec.spec


from campaign.web.api import (  # noqa: E402, F401 - registers the views
    analysis,
    drafting,
    experiment_reports,
    experiments,
    health,
    metrics,
    publishing,
    resources,
    vacancies,
)
