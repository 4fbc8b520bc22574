"""Read endpoints for the resources the UI manages (more arrive with each capability)."""

from __future__ import annotations

from typing import Any

from spectree import Response as SpecResponse

from campaign.services import campaigns, tokens
from campaign.web.api import bp, spec
from campaign.web.api.auth import current_token, token_required
from campaign.web.api.schemas import CampaignList, ErrorResponse, TokenList
from campaign.web.context import get_session

_AUTH_ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse}


def rfc3339(value: Any) -> str | None:
    """An aware UTC datetime as RFC 3339 with a Z, or None."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@bp.get("/campaigns")
@spec.validate(
    resp=SpecResponse(HTTP_200=CampaignList, **_AUTH_ERRORS),
    tags=["campaigns"],
    security={"bearer": []},
)
@token_required("read")
def list_campaigns() -> Any:
    """Campaigns of the token's organisation, with their messages and variants."""
    found = campaigns.list_campaigns(get_session(), current_token().organisation_id)
    items = [
        {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "messages": [
                {
                    "id": m.id,
                    "title": m.title,
                    "link_url": m.link_url,
                    "intent": m.intent,
                    "context": m.context,
                    "variants": [
                        {
                            "id": v.id,
                            "label": v.label,
                            "text": v.text,
                            "audience": v.audience,
                            "framing_tags": [t.key for t in v.framing_tags],
                        }
                        for v in m.variants
                    ],
                }
                for m in c.messages
            ],
        }
        for c in found
    ]
    return {"items": items}


@bp.get("/tokens")
@spec.validate(
    resp=SpecResponse(HTTP_200=TokenList, **_AUTH_ERRORS), tags=["admin"], security={"bearer": []}
)
@token_required("admin")
def list_tokens() -> Any:
    """The organisation's API tokens, by prefix; secrets are never returned."""
    listed = tokens.list_tokens(get_session(), current_token().organisation_id)
    return {
        "items": [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "scopes": t.scope_list,
                "created_at": rfc3339(t.created_at),
                "last_used_at": rfc3339(t.last_used_at),
                "revoked": t.revoked_at is not None,
            }
            for t in listed
        ]
    }
