"""Vacancies through the API: push them (per-item results), list them, list and add sources.

Pushing needs `vacancies:write` and upserts into the token's own push source (created on its
first push) by external id; every item gets a result, and a bad item never sinks the batch.
Reading needs `read`; adding a source needs `admin`. Another organisation's data is never seen.
"""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import ValidationError

from campaign.models import Vacancy, VacancySource
from campaign.services import ServiceError, vacancy_sources
from campaign.services import vacancies as records
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.drafting import _BEARER, _POSTED, _actor, _answering, _body, _responses
from campaign.web.api.errors import ApiError
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.resources import rfc3339
from campaign.web.api.vacancies_schemas import (
    MAX_BATCH,
    SourceIn,
    SourceList,
    SourceOut,
    VacancyIn,
    VacancyList,
    VacancyPushIn,
    VacancyPushOut,
    VacancyQuery,
)
from campaign.web.context import get_session, now


def _vacancy(v: Vacancy) -> dict[str, Any]:
    return {
        "id": v.id,
        "source_id": v.source_id,
        "external_id": v.external_id,
        "title": v.title,
        "employer": v.employer,
        "location": v.location,
        "url": v.url,
        "description_html": v.description_html,
        "description_text": v.description_text,
        "posted_at": rfc3339(v.posted_at),
        "closes_at": rfc3339(v.closes_at),
        "salary_text": v.salary_text,
        "salary_min": None if v.salary_min is None else str(v.salary_min),
        "salary_max": None if v.salary_max is None else str(v.salary_max),
        "salary_currency": v.salary_currency,
        "salary_period": v.salary_period,
        "flags": v.flag_list,
        "warnings": v.warning_list,
        "tags": v.tag_list,
        "status": v.status,
        "first_seen_at": rfc3339(v.first_seen_at),
        "last_seen_at": rfc3339(v.last_seen_at),
        "updated_at": rfc3339(v.updated_at),
    }


def _source(s: VacancySource) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "kind": s.kind,
        "url": s.url,
        "enabled": s.enabled,
        "poll_interval_minutes": s.poll_interval_minutes,
        "withdraw_after_polls": s.withdraw_after_polls,
        "last_polled_at": rfc3339(s.last_polled_at),
        "next_poll_at": rfc3339(s.next_poll_at),
        "last_status": s.last_status,
        "last_error": s.last_error,
        "last_items": s.last_items,
        "last_new": s.last_new,
        "last_updated": s.last_updated,
        "last_warnings": s.warning_list,
        "consecutive_errors": s.consecutive_errors,
        "created_at": rfc3339(s.created_at),
    }


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "item"
    return f"{where}: {first.get('msg', 'invalid')}"


def _pushed_items(payload: Any) -> list[Any]:
    if not isinstance(payload, dict):
        raise ApiError(422, 'body: send one vacancy object or {"items": [...]}')
    if "items" not in payload:
        return [payload]
    items = payload["items"]
    if not isinstance(items, list) or not items:
        raise ApiError(422, "items: send a list of 1 to 1000 vacancies")
    if len(items) > MAX_BATCH:
        raise ApiError(422, f"items: at most {MAX_BATCH} vacancies in one request")
    return items


@bp.post("/vacancies")
@spec.validate(
    json=VacancyPushIn,
    headers=IdempotencyHeaders,
    resp=_responses(200, VacancyPushOut, *_POSTED),
    tags=["vacancies"],
    security=_BEARER,
)
@token_required("vacancies:write")
@idempotent
def push_vacancies() -> Any:
    """Push one vacancy or a batch of up to 1,000. Scope: vacancies:write.

    Each item has the fields of VacancyIn and is upserted by (this token's push source,
    external_id). Every item gets a result: created, updated, unchanged, or refused with the
    reason; a refused item does not stop the others, which are kept.
    """
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError(422, "body: send a JSON object", details={"body": "not JSON"})
    raw = _pushed_items(payload)
    checked: list[vacancy_sources.PushItem | str] = []
    for item in raw:
        try:
            body = VacancyIn.model_validate(item)
        except ValidationError as exc:
            checked.append(_reason(exc))
            continue
        checked.append(
            vacancy_sources.PushItem(
                external_id=body.external_id.strip(), title=body.title, employer=body.employer,
                url=body.url, location=body.location, salary=body.salary,
                closing_date=body.closing_date or "", description=body.description,
                tags=tuple(body.tags),
            )
        )  # fmt: skip
    good = [c for c in checked if isinstance(c, vacancy_sources.PushItem)]
    db = get_session()
    try:
        source, pushed = vacancy_sources.push_vacancies(db, current_token(), good, now())
    except ServiceError as exc:
        db.rollback()
        raise ApiError(409, str(exc)) from exc
    db.commit()
    results: list[dict[str, Any]] = []
    answers = iter(pushed)
    for index, c in enumerate(checked):
        if isinstance(c, str):
            external = raw[index].get("external_id") if isinstance(raw[index], dict) else None
            results.append({
                "index": index, "external_id": external if isinstance(external, str) else None,
                "result": "refused", "id": None, "reason": c, "warnings": [],
            })  # fmt: skip
            continue
        answer = next(answers)
        results.append({
            "index": index, "external_id": answer.external_id, "result": answer.result,
            "id": answer.vacancy_id, "reason": answer.reason, "warnings": answer.warnings,
        })  # fmt: skip
    counts = {k: sum(1 for r in results if r["result"] == k)
              for k in ("created", "updated", "unchanged", "refused")}  # fmt: skip
    return {"source_id": source.id, "counts": counts, "results": results}


@bp.get("/vacancies")
@spec.validate(
    query=VacancyQuery,
    resp=_responses(200, VacancyList, 422),
    tags=["vacancies"],
    security=_BEARER,
)
@token_required("read")
def list_vacancies() -> Any:
    """The organisation's vacancies, newest first, paged by offset. Scope: read.

    `status` is open (the default), expired, withdrawn or all.
    """
    query = VacancyQuery.model_validate(request.args.to_dict())
    found, total = records.list_vacancies(
        get_session(),
        current_token().organisation_id,
        status=query.status,
        limit=query.limit,
        offset=query.offset,
    )
    more = query.offset + len(found) < total
    return {
        "items": [_vacancy(v) for v in found],
        "total": total,
        "next_offset": query.offset + query.limit if more else None,
    }


@bp.get("/vacancy-sources")
@spec.validate(resp=_responses(200, SourceList), tags=["vacancies"], security=_BEARER)
@token_required("read")
def list_vacancy_sources() -> Any:
    """The organisation's vacancy sources with their last poll's status. Scope: read."""
    found = vacancy_sources.list_sources(get_session(), current_token().organisation_id)
    return {"items": [_source(s) for s in found]}


@bp.post("/vacancy-sources")
@spec.validate(
    json=SourceIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, SourceOut, *_POSTED),
    tags=["vacancies"],
    security=_BEARER,
)
@token_required("admin")
@idempotent
def create_vacancy_source() -> Any:
    """Add a feed (polled from its URL) or CSV source. Scope: admin."""
    body = _body(SourceIn)
    data = vacancy_sources.SourceInput(**body.model_dump())
    with _answering():
        try:
            created = vacancy_sources.create_source(get_session(), _actor(), data, now())
        except vacancy_sources.FieldError as exc:
            get_session().rollback()
            raise ApiError(422, str(exc), details={"field": exc.field}) from exc
    answer = _source(created)
    get_session().commit()
    return answer, 201
