"""Channel adapters: one per network, behind the protocol in base.py, found by kind here."""

from __future__ import annotations

import importlib

from campaign.channels.base import Capabilities, ChannelAdapter

# Kind to "module:Class". Resolved on first use, so that a worker which only publishes to the
# outbox never pays for importing tweepy, Mastodon.py or the atproto SDK.
ADAPTERS: dict[str, str] = {
    "outbox": "campaign.channels.outbox:OutboxAdapter",
    "manual": "campaign.channels.manual:ManualAdapter",
    "x": "campaign.channels.x:XAdapter",
    "mastodon": "campaign.channels.mastodon:MastodonAdapter",
    "bluesky": "campaign.channels.bluesky:BlueskyAdapter",
}


def adapter_class(kind: str) -> type[ChannelAdapter]:
    """The adapter class for a channel kind; KeyError for an unknown kind."""
    module_name, _, class_name = ADAPTERS[kind].partition(":")
    found: type[ChannelAdapter] = getattr(importlib.import_module(module_name), class_name)
    return found


def capabilities(kind: str) -> Capabilities:
    """What a kind of channel can do (length rule, idempotency, lookups, metrics)."""
    return adapter_class(kind).capabilities
