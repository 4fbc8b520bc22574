"""Each Mastodon channel's own limits, read from its instance and kept on the channel.

Instances may raise the 500-character default; drafting checks posts against what the
instance says, and falls back to 500 and 23 characters per link until it has been asked.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels.base import ChannelError
from campaign.config import Settings
from campaign.db import database_now
from campaign.models import Channel

log = logging.getLogger(__name__)

# Limits change rarely; asking once a day keeps up with an instance that raises them.
MAX_AGE = dt.timedelta(days=1)


def channels_due_a_check(
    session: Session, now: dt.datetime, default_base_url: str, limit: int = 20
) -> list[tuple[int, str]]:
    """Mastodon channels never checked, or not in the last day: (id, instance URL)."""
    rows = session.execute(
        select(Channel.id, Channel.base_url)
        .where(
            Channel.kind == "mastodon",
            Channel.status == "active",
            or_(Channel.limits_checked_at.is_(None), Channel.limits_checked_at < now - MAX_AGE),
        )
        .order_by(Channel.id)
        .limit(limit)
    ).all()
    return [(channel_id, base_url or default_base_url) for channel_id, base_url in rows]


def record_limits(
    session: Session, channel_id: int, max_characters: int, per_url: int, now: dt.datetime
) -> None:
    """Keep what the instance said about its limits."""
    session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(max_characters=max_characters, characters_per_url=per_url, limits_checked_at=now)
    )


def refresh_mastodon_limits(
    factory: sessionmaker[Session], settings: Settings, only: int | None = None
) -> int:
    """Ask each Mastodon instance that is due a check for its limits; returns how many answered."""
    from campaign import netguard
    from campaign.channels.mastodon import fetch_instance_limits

    with factory.begin() as session:
        due = channels_due_a_check(session, database_now(session), settings.mastodon.api_base_url)
    http = netguard.guarded_session(
        netguard.parse_allow_list(settings.network.allow_private_hosts),
        timeout=settings.publishing.request_timeout_seconds,
    )
    answered = 0
    for channel_id, base_url in due:
        if only is not None and channel_id != only:
            continue
        try:
            limits = fetch_instance_limits(
                http, base_url, settings.publishing.request_timeout_seconds
            )
        except (ChannelError, OSError) as exc:
            # Keep the last known limits; the next pass asks again.
            log.info("channel %s: could not read the instance's limits (%s)", channel_id, exc)
            continue
        with factory.begin() as session:
            record_limits(
                session,
                channel_id,
                limits.max_characters,
                limits.characters_reserved_per_url,
                database_now(session),
            )
        answered += 1
    http.close()
    return answered
