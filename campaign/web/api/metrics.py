"""Engagement figures through the API: readings in (per-item results), a post's figures out.

`POST /metrics` needs `metrics:write`: each item is matched in the token's organisation and
saved (as imported figures, source "csv", like the CSV import) or refused with the reason;
the good ones are kept. `GET /metrics?post_id=N` needs `read`.
"""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import ValidationError
from spectree import Response as SpecResponse

from campaign.services import engagement_import, links, metric_reads
from campaign.services.audit import Actor
from campaign.services.engagement_csv import FIGURES, EngagementRow
from campaign.services.engagement_import import CSV_TO_FIELD
from campaign.services.metric_windows import windows_from
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.drafting import token_role
from campaign.web.api.errors import ApiError
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.metrics_schemas import (
    MetricsIn,
    MetricsQuery,
    MetricsSaved,
    PostMetricsOut,
)
from campaign.web.api.resources import rfc3339
from campaign.web.api.schemas import ErrorResponse
from campaign.web.context import get_session, now, state

_BEARER: dict[str, list[str]] = {"bearer": []}


def _errors(*codes: int) -> dict[str, Any]:
    return {f"HTTP_{code}": ErrorResponse for code in (401, 403, *codes)}


def _actor() -> Actor:
    token = current_token()
    return Actor(
        organisation_id=token.organisation_id,
        label=f"API token {token.prefix}",
        role=token_role(token.scope_list).value,
    )


def _details(exc: ValidationError) -> dict[str, str]:
    return {
        ".".join(str(part) for part in item.get("loc", ())) or "body": item.get("msg", "")
        for item in exc.errors()
    }


@bp.post("/metrics")
@spec.validate(
    json=MetricsIn,
    headers=IdempotencyHeaders,
    resp=SpecResponse(HTTP_200=MetricsSaved, **_errors(400, 409, 422)),
    tags=["metrics"],
    security=_BEARER,
)
@token_required("metrics:write")
@idempotent
def post_metrics() -> Any:
    """Save engagement readings, up to 1,000 at once. Scope: metrics:write.

    Each item names a post (`post_id`, enough when it went out on one channel) or a platform
    post (`external_id`), or both. Every item gets a result: saved, or refused with the reason
    (another organisation's ids are not found; a post on several channels needs external_id;
    `collected_at` may not be before the post went out, nor in the future); the good items are
    kept. A reading is filed at the largest post age it is old enough for, and as "latest".
    Sending the same reading again replaces its figures. `clicks` is the network's own count.
    """
    payload = request.get_json(silent=True)
    try:
        body = MetricsIn.model_validate(payload if payload is not None else {})
    except ValidationError as exc:
        details = _details(exc)
        first = next(iter(details.items()))
        raise ApiError(422, f"{first[0]}: {first[1]}", details=details) from exc
    rows = [
        EngagementRow(
            line=index,
            post_id=item.post_id,
            external_id=item.external_id,
            collected_at=item.collected_at,
            figures={name: getattr(item, name) for name in FIGURES},
        )
        for index, item in enumerate(body.items)
    ]
    token = current_token()
    db = get_session()
    results = engagement_import.save_items(
        db,
        _actor(),
        token.organisation,
        rows,
        now(),
        source="csv",
        windows=windows_from(state().settings.metrics.ages),
    )
    answer = {
        "saved": sum(1 for r in results if r.saved),
        "refused": sum(1 for r in results if not r.saved),
        "results": [
            {
                "index": r.index,
                "status": "saved" if r.saved else "refused",
                "reason": r.reason,
                "post_id": r.reading.post_id if r.reading else None,
                "delivery_id": r.reading.delivery_id if r.reading else None,
                "window": r.reading.window.label if r.reading and r.reading.window else None,
            }
            for r in results
        ],
    }
    db.commit()
    return answer


@bp.get("/metrics")
@spec.validate(
    query=MetricsQuery,
    resp=SpecResponse(HTTP_200=PostMetricsOut, **_errors(404, 422)),
    tags=["metrics"],
    security=_BEARER,
)
@token_required("read")
def get_metrics() -> Any:
    """A post's engagement per channel: every snapshot (window, source, when read) and the
    app's tracked-link clicks. Scope: read."""
    query = MetricsQuery.model_validate(request.args.to_dict())
    db = get_session()
    token = current_token()
    post = engagement_import.find_post(db, token.organisation_id, query.post_id)
    if post is None:
        raise ApiError(404, f"post_id: no post {query.post_id} in this organisation")
    snapshots = metric_reads.post_snapshots(db, post.id)
    clicks = links.click_counts(db, [d.id for d in post.deliveries])
    return {
        "post_id": post.id,
        "deliveries": [
            {
                "delivery_id": d.id,
                "channel": d.channel.display_name,
                "external_id": d.external_id,
                "status": d.status,
                "published_at": rfc3339(d.published_at),
                "tracked_clicks": clicks[d.id].clicks,
                "tracked_unique_clicks": clicks[d.id].unique,
                "snapshots": [
                    {
                        "window": s.window,
                        "source": s.source,
                        "collected_at": rfc3339(s.collected_at),
                        "age_seconds": s.age_seconds,
                        "late": s.late,
                        **{
                            name: getattr(s.figures, CSV_TO_FIELD.get(name, name))
                            for name in FIGURES
                        },
                    }
                    for s in snapshots.get(d.id, [])
                ],
            }
            for d in post.deliveries
        ],
    }
