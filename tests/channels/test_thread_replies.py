"""Thread parts on the wire: each network is asked to publish a reply to the part before it."""

from __future__ import annotations

import dataclasses
import json

import pytest
import responses

from campaign.channels.base import OutgoingPost, PermanentError, ReplyTarget
from campaign.channels.outbox import OutboxAdapter
from tests.channels import test_bluesky as bsky
from tests.channels import test_mastodon as masto
from tests.channels import test_x as x

X_REPLY = ReplyTarget(parent_id="1800000000000000002", root_id="1800000000000000001")
MASTODON_REPLY = ReplyTarget(parent_id="113000000000000002", root_id="113000000000000001")
ROOT_URI = f"at://{bsky.DID}/app.bsky.feed.post/3kroot"
PARENT_URI = f"at://{bsky.DID}/app.bsky.feed.post/3kparent"
BLUESKY_REPLY = ReplyTarget(
    parent_id=PARENT_URI, root_id=ROOT_URI, parent_ref="bafyparent", root_ref="bafyroot"
)


def _part(post: OutgoingPost, reply: ReplyTarget | None, part: int = 2) -> OutgoingPost:
    return dataclasses.replace(post, part=part, reply_to=reply, link_url=None)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def test_x_sends_a_part_as_a_reply_to_its_parent(api):
    x.created(api, "1800000000000000003")
    x.make_adapter().publish(_part(x.outgoing(text="Vacancy 2"), X_REPLY))
    body = json.loads(api.calls[0].request.body)
    assert body == {"text": "Vacancy 2", "reply": {"in_reply_to_tweet_id": "1800000000000000002"}}


def test_x_sends_a_first_post_without_a_reply(api):
    x.created(api)
    x.make_adapter().publish(x.outgoing(text="New vacancies"))
    assert "reply" not in json.loads(api.calls[0].request.body)


def test_mastodon_sends_a_part_in_reply_to_its_parent(api):
    api.post(masto.STATUSES, json=masto.status_json(in_reply_to_id="113000000000000002"))
    masto.make_adapter().publish(_part(masto.outgoing("Vacancy 2"), MASTODON_REPLY))
    request = api.calls[0].request
    sent = request.body.decode() if isinstance(request.body, bytes) else request.body
    fields = dict(pair.split("=", 1) for pair in sent.split("&"))
    assert fields["in_reply_to_id"] == "113000000000000002"
    assert fields["status"] == "Vacancy+2"
    assert request.headers["Idempotency-Key"] == "delivery-1-5f0c"


def test_bluesky_sends_root_and_parent_strong_refs(pds, saved):
    adapter = bsky.make_adapter(pds, saved)
    published = adapter.publish(_part(bsky.outgoing("Vacancy 2"), BLUESKY_REPLY))
    record = pds.body(bsky.CREATE_RECORD)["record"]
    strong = "com.atproto.repo.strongRef"
    assert record["reply"] == {
        "$type": "app.bsky.feed.post#replyRef",
        "root": {"$type": strong, "uri": ROOT_URI, "cid": "bafyroot"},
        "parent": {"$type": strong, "uri": PARENT_URI, "cid": "bafyparent"},
    }
    # Its own cid is kept, so the next part can answer it.
    assert published.reply_ref == "bafyreie5737gdxlw5i64vzichcalba3z2v5"


def test_bluesky_refuses_a_reply_without_content_ids(pds, saved):
    adapter = bsky.make_adapter(pds, saved)
    reply = dataclasses.replace(BLUESKY_REPLY, parent_ref=None)
    with pytest.raises(PermanentError, match="content ids"):
        adapter.publish(_part(bsky.outgoing("Vacancy 2"), reply))
    assert pds.calls == []


def test_bluesky_lookup_returns_the_cid(pds, saved):
    adapter = bsky.make_adapter(pds, saved)
    adapter.publish(bsky.outgoing())
    found = adapter.lookup(bsky.outgoing())
    assert found is not None and found.reply_ref == "bafyrei1"


@pytest.mark.parametrize("network", ["x", "mastodon", "bluesky", "outbox"])
def test_a_part_without_its_parent_is_refused_before_any_request(network, api, pds, saved):
    """The engine never schedules one, but an adapter never sends a reply as a post of its own."""
    if network == "x":
        adapter, post = x.make_adapter(), x.outgoing()
    elif network == "mastodon":
        adapter, post = masto.make_adapter(), masto.outgoing()
    elif network == "bluesky":
        adapter, post = bsky.make_adapter(pds, saved), bsky.outgoing()
    else:
        adapter = _outbox()
        post = masto.outgoing()
    with pytest.raises(PermanentError, match="not published"):
        adapter.publish(_part(post, None))
    assert len(api.calls) == 0 and pds.calls == []


def _outbox() -> OutboxAdapter:
    from campaign.channels.base import ChannelContext

    class Store:
        def insert(self, *args):  # pragma: no cover - must not be reached
            raise AssertionError("stored a reply without its parent")

    return OutboxAdapter(
        ChannelContext(
            kind="outbox", base_url="", credentials={}, http=None,
            extra={"outbox_store": Store(), "channel_id": 1},
        )
    )  # fmt: skip


pds = bsky.pds
saved = bsky.saved
