"""Bearer-token authentication with scopes for API views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request

from campaign.models import ApiToken
from campaign.services import tokens
from campaign.web.api.errors import ApiError
from campaign.web.context import get_session, now

P = ParamSpec("P")
R = TypeVar("R")


def token_required(scope: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require `Authorization: Bearer <token>` whose scopes include `scope` (or `admin`)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            header = request.headers.get("Authorization", "")
            kind, _, presented = header.partition(" ")
            if kind.lower() != "bearer" or not presented.strip():
                raise ApiError(401, "send an API token as 'Authorization: Bearer <token>'")
            db = get_session()
            token = tokens.authenticate_token(db, presented.strip(), now())
            if token is None:
                raise ApiError(401, "the API token is unknown or revoked")
            if scope not in token.scope_list and "admin" not in token.scope_list:
                raise ApiError(
                    403, f"this token lacks the '{scope}' scope", details={"scope": scope}
                )
            db.commit()
            g.api_token = token
            return view(*args, **kwargs)

        wrapped.required_scope = scope  # type: ignore[attr-defined]
        return wrapped

    return decorate


def current_token() -> ApiToken:
    token: ApiToken = g.api_token
    return token
