"""`Idempotency-Key` on API POSTs: the first answer for a (token, key) is stored and replayed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec

from flask import Response, make_response, request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from werkzeug.exceptions import HTTPException

from campaign.services import idempotency
from campaign.web.api.auth import current_token
from campaign.web.api.errors import ApiError, error_response
from campaign.web.context import get_session, now

P = ParamSpec("P")
log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

_DESCRIPTION = (
    "Optional. 1 to 255 printable ASCII characters, unique per request (a UUID is a good choice)."
    " The first answer below 500 for this token and key is kept for at least 24 hours; repeating"
    " the same request with the key replays that answer with `Idempotent-Replayed: true`. The"
    " same key with a different body or path is a 409, and so is a repeat while the first is"
    " still running. A 5xx keeps nothing, so the request may be retried with the same key."
)


class IdempotencyHeaders(BaseModel):
    """Documents the header; the decorator, not this model, checks it (400, not 422)."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: Annotated[
        str | None,
        # A header is a string or absent, never null; the bounds are documented here.
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": "^[\\x20-\\x7e]+$",
            }
        ),
    ] = Field(default=None, alias=HEADER, description=_DESCRIPTION)


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= char <= "~" for char in key)


def _replay(answer: idempotency.Replay) -> Response:
    response = Response(answer.body, status=answer.status_code, mimetype="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _run(view: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Response:
    # Client errors raised by the view are answers too: kept and replayed, as Stripe does.
    try:
        return make_response(view(*args, **kwargs))
    except ApiError as exc:
        if exc.status >= 500:
            raise
        return error_response(exc.status, exc.message, exc.code, exc.details)
    except HTTPException as exc:
        if (exc.code or 500) >= 500:
            raise
        return error_response(exc.code or 400, exc.description or exc.name)


def _release(row_id: int) -> None:
    db = get_session()
    try:
        db.rollback()
        idempotency.release(db, row_id)
        db.commit()
    except Exception:
        # The original failure matters more; the claim is pruned within a day regardless.
        log.exception("could not release idempotency key row %s", row_id)
        db.rollback()


def idempotent(view: Callable[P, Any]) -> Callable[P, Any]:
    """Honour `Idempotency-Key` on a POST view; place it inside `token_required`."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _valid_key(key):
            raise ApiError(
                400,
                f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                details={"header": HEADER},
            )
        db = get_session()
        fingerprint = idempotency.request_hash(request.method, request.path, request.get_data())
        try:
            outcome = idempotency.claim(
                db, current_token().id, key, request.method, request.path, fingerprint, now()
            )
        except (idempotency.KeyReused, idempotency.KeyInProgress) as exc:
            raise ApiError(409, str(exc), details={"header": HEADER}) from exc
        if isinstance(outcome, idempotency.Replay):
            return _replay(outcome)
        try:
            response = _run(view, *args, **kwargs)
        except BaseException:
            _release(outcome.row_id)
            raise
        if response.status_code >= 500:
            _release(outcome.row_id)
            return response
        # Whatever the view left uncommitted must not ride along with the bookkeeping commit.
        db.rollback()
        idempotency.complete(
            db, outcome.row_id, response.status_code, response.get_data(as_text=True), now()
        )
        db.commit()
        return response

    return wrapped
