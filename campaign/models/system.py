"""Process bookkeeping: worker heartbeats."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from campaign.db import Base


class WorkerHeartbeat(Base):
    """The last tick of each worker process, read by /api/v1/health."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[dt.datetime]
    last_tick_at: Mapped[dt.datetime]
