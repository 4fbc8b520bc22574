"""All models, imported here so that Alembic and the mapper registry see every table."""

import campaign.models.alerts  # registers the vacancy alert tables
import campaign.models.engagement  # noqa: F401 - registers the tracked-link tables
from campaign.models import metrics  # noqa: F401 - registers the metric snapshot tables
from campaign.models.account import API_SCOPES, ApiToken, LoginAttempt, Membership, Role, User
from campaign.models.audit import AuditEvent
from campaign.models.campaign import Campaign, Message, Variant, variant_framing_tags
from campaign.models.channel import CHANNEL_KINDS, Channel
from campaign.models.experiment import Experiment, ExperimentArm, ExperimentSlot
from campaign.models.idempotency import IdempotencyKey
from campaign.models.oauth import OAUTH_KINDS, MastodonApp, OAuthAuthorization
from campaign.models.organisation import AUDIENCES, DEFAULT_FRAMING_TAGS, FramingTag, Organisation
from campaign.models.outbox import OutboxEntry
from campaign.models.planning import KEY_DATE_EFFECTS, KEY_DATE_KINDS, KeyDate, QueueSlot
from campaign.models.post import DELIVERY_STATUSES, POST_STATUSES, Delivery, DeliveryAttempt, Post
from campaign.models.system import WorkerHeartbeat
from campaign.models.vacancy import Vacancy, VacancyListing, VacancySource

__all__ = [
    "API_SCOPES",
    "AUDIENCES",
    "CHANNEL_KINDS",
    "DEFAULT_FRAMING_TAGS",
    "DELIVERY_STATUSES",
    "KEY_DATE_EFFECTS",
    "KEY_DATE_KINDS",
    "OAUTH_KINDS",
    "POST_STATUSES",
    "ApiToken",
    "AuditEvent",
    "Campaign",
    "Channel",
    "Delivery",
    "DeliveryAttempt",
    "Experiment",
    "ExperimentArm",
    "ExperimentSlot",
    "FramingTag",
    "IdempotencyKey",
    "KeyDate",
    "LoginAttempt",
    "MastodonApp",
    "Membership",
    "Message",
    "OAuthAuthorization",
    "Organisation",
    "OutboxEntry",
    "Post",
    "QueueSlot",
    "Role",
    "User",
    "Vacancy",
    "VacancyListing",
    "VacancySource",
    "Variant",
    "WorkerHeartbeat",
    "variant_framing_tags",
]
