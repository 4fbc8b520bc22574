"""Worker heartbeats and the health summary."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from campaign.models import WorkerHeartbeat


def record_heartbeat(
    session: Session,
    worker_id: str,
    hostname: str,
    pid: int,
    started_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """Upsert this worker's last tick."""
    beat = session.get(WorkerHeartbeat, worker_id)
    if beat is None:
        beat = WorkerHeartbeat(
            worker_id=worker_id,
            hostname=hostname[:200],
            pid=pid,
            started_at=started_at,
            last_tick_at=now,
        )
        session.add(beat)
    else:
        beat.last_tick_at = now
    session.flush()


def last_worker_tick(session: Session) -> dt.datetime | None:
    """The most recent tick of any worker, or None when no worker has ever run."""
    return session.scalar(select(func.max(WorkerHeartbeat.last_tick_at)))


def database_ok(session: Session) -> bool:
    """True when a trivial query succeeds."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
