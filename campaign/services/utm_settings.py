"""Settings → Tracked links: an organisation's UTM choices, changed by admins and audited.

The choices themselves, their checks and their effect on each redirect live in
campaign.services.links; this is the use case around them (who may, and the audit trail).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from campaign.services import PermissionDenied, links
from campaign.services.audit import Actor, record
from campaign.services.links import UtmSettings

# What a link looks like with the choices, for the settings page: an example post's context.
EXAMPLE_TARGET = "https://www.example.ac.uk/careers/fair?day=fri"
EXAMPLE = links.LinkContext(
    channel_kind="mastodon",
    channel_name="Careers on Mastodon",
    campaign_id=12,
    campaign_name="Autumn careers fair",
    variant_id=34,
    variant_label="Question",
)


def change(
    session: Session, organisation_id: int, settings: UtmSettings, actor: Actor, now: dt.datetime
) -> UtmSettings:
    """Store the organisation's UTM choices (admins only); ServiceError names a bad value."""
    if actor.role != "admin" or actor.organisation_id != organisation_id:
        raise PermissionDenied("Only an admin can change how tracked links are tagged.")
    before = links.utm_settings(session, organisation_id)
    saved = links.save_utm_settings(session, organisation_id, settings, now)
    changes = {
        name: {"from": getattr(before, name), "to": value}
        for name, value in dataclasses.asdict(saved).items()
        if getattr(before, name) != value
    }
    record(session, actor, "links.utm_settings", "organisation", organisation_id, now,
           organisation_id=organisation_id, changes=changes)  # fmt: skip
    return saved


def example_link(settings: UtmSettings) -> str:
    """Where the example post's link would lead with these choices."""
    return links.add_query(
        EXAMPLE_TARGET, links.utm_parameters(settings, EXAMPLE), settings.override_existing
    )
