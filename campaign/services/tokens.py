"""Scoped API tokens: shown once, stored as a SHA-256 hash, listed by prefix."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import API_SCOPES, ApiToken
from campaign.services import NotFound, ServiceError, audit
from campaign.services.audit import Actor

TOKEN_MARK = "cmp"  # noqa: S105 - the public marker at the start of every token, not a secret


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(raw: str | list[str]) -> list[str]:
    """Validated, de-duplicated scopes; the error names the unknown ones."""
    items = raw.split(",") if isinstance(raw, str) else raw
    scopes = sorted({item.strip() for item in items if item.strip()})
    unknown = [scope for scope in scopes if scope not in API_SCOPES]
    if unknown:
        raise ServiceError(
            f"unknown scope(s): {', '.join(unknown)}; choose from {', '.join(API_SCOPES)}"
        )
    if not scopes:
        raise ServiceError("choose at least one scope")
    return scopes


def create_token(
    session: Session,
    organisation_id: int,
    name: str,
    scopes: list[str],
    actor: Actor | None,
    now: dt.datetime,
) -> tuple[ApiToken, str]:
    """A new token and its plaintext, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ServiceError("give the token a name")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    plaintext = f"{TOKEN_MARK}_{prefix}_{secret}"
    token = ApiToken(
        organisation_id=organisation_id,
        name=name[:200],
        prefix=prefix,
        token_hash=_hash(plaintext),
        scopes=",".join(parse_scopes(scopes)),
        created_by_id=actor.user_id if actor else None,
        created_at=now,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        "token.created",
        "api_token",
        token.id,
        now,
        organisation_id,
        prefix=prefix,
        scopes=token.scopes,
    )
    return token, plaintext


def authenticate_token(session: Session, presented: str, now: dt.datetime) -> ApiToken | None:
    """The active token matching a presented bearer string, or None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_MARK:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.prefix == parts[1]))
    if token is None or not token.is_active:
        return None
    if not hmac.compare_digest(token.token_hash, _hash(presented)):
        return None
    token.last_used_at = now
    return token


def list_tokens(session: Session, organisation_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.organisation_id == organisation_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
        )
    )


def revoke_token(session: Session, actor: Actor, token_id: int, now: dt.datetime) -> ApiToken:
    """Revoke one of the actor's organisation's tokens; NotFound for any other."""
    token = session.get(ApiToken, token_id)
    if token is None or token.organisation_id != actor.organisation_id:
        raise NotFound("no such token")
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(
            session, actor, "token.revoked", "api_token", token.id, now, prefix=token.prefix
        )
    session.flush()
    return token
