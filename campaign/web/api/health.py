"""Health checks: /api/v1/health for monitoring, /healthz for load balancers."""

from __future__ import annotations

from typing import Any

from spectree import Response as SpecResponse

from campaign.services import system
from campaign.web.api import bp, spec
from campaign.web.api.schemas import Health
from campaign.web.context import get_session


@bp.get("/health")
@spec.validate(resp=SpecResponse(HTTP_200=Health, HTTP_503=Health), tags=["system"])
def health() -> Any:
    """Database and worker status; needs no token."""
    db = get_session()
    ok = system.database_ok(db)
    last = system.last_worker_tick(db) if ok else None
    body = {
        "status": "ok" if ok else "degraded",
        "database": "ok" if ok else "unavailable",
        "worker": {"last_tick": last.isoformat().replace("+00:00", "Z") if last else None},
    }
    return body, 200 if ok else 503
