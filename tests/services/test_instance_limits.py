"""Mastodon channels learn their instance's character limits, through the guarded client."""

import datetime as dt

import pytest
import responses
from sqlalchemy import text, update

from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.db import database_now
from campaign.models import Channel
from campaign.services.channels import NewChannel, create_channel
from campaign.services.instance_limits import refresh_mastodon_limits
from campaign.services.organisations import create_organisation
from tests.conftest import settings_for

INSTANCE = "http://127.0.0.1:9"


@pytest.fixture
def channel_id(factory):
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))
        now = database_now(session)
        org = create_organisation(session, "limits", "Limits", "Europe/London", now)
        channel = create_channel(
            session,
            org.id,
            NewChannel(kind="mastodon", display_name="M", base_url=INSTANCE),
            {"access_token": "t"},
            CredentialBox([generate_key()]),
            None,
            now,
        )
        return channel.id


def _settings(tmp_path, allow=("127.0.0.1",)):
    return load_settings(
        settings_for("sqlite://", tmp_path, network={"allow_private_hosts": list(allow)}),
        use_file=False,
    )


def _channel(factory, channel_id):
    with factory.begin() as session:
        return session.get(Channel, channel_id)


@responses.activate
def test_the_instances_own_limit_is_stored_on_the_channel(factory, channel_id, tmp_path):
    responses.get(
        f"{INSTANCE}/api/v2/instance",
        json={
            "configuration": {
                "statuses": {"max_characters": 1000, "characters_reserved_per_url": 23}
            }
        },
    )
    assert refresh_mastodon_limits(factory, _settings(tmp_path)) == 1
    found = _channel(factory, channel_id)
    assert (found.max_characters, found.characters_per_url) == (1000, 23)
    assert found.limits_checked_at is not None
    # Checked today: not asked again.
    assert refresh_mastodon_limits(factory, _settings(tmp_path)) == 0
    assert len(responses.calls) == 1


@responses.activate
def test_a_stale_check_is_repeated(factory, channel_id, tmp_path):
    responses.get(
        f"{INSTANCE}/api/v2/instance",
        json={"configuration": {"statuses": {"max_characters": 640}}},
    )
    with factory.begin() as session:
        session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(
                max_characters=500,
                limits_checked_at=database_now(session) - dt.timedelta(days=2),
            )
        )
    assert refresh_mastodon_limits(factory, _settings(tmp_path)) == 1
    assert _channel(factory, channel_id).max_characters == 640


def test_an_instance_on_a_private_address_is_refused_unless_allowed(factory, channel_id, tmp_path):
    assert refresh_mastodon_limits(factory, _settings(tmp_path, allow=())) == 0
    assert _channel(factory, channel_id).max_characters is None
