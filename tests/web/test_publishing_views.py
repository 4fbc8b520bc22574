"""The posts lists, a delivery's page, the timeline and channel health, as people use them."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from campaign.models import AuditEvent, Channel, Delivery, DeliveryAttempt, OutboxEntry, Post
from tests.conftest import NOW

XSS = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def make_delivery(db, part, status="scheduled", kind="outbox", text="Hello", **values):
    channel = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name=f"Careers {kind}",
        audience="students",
        created_at=NOW,
    )
    values.setdefault("updated_at", NOW)
    values.setdefault("due_at", NOW + dt.timedelta(minutes=30))
    found = Delivery(channel=channel, idempotency_key=uuid.uuid4().hex, status=status, **values)
    post = Post(organisation_id=part.org.id, text=text, status="approved", created_at=NOW)
    post.deliveries.append(found)
    db.add(post)
    db.flush()
    return found


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_posts_tabs_show_states_in_plain_words(client, auth, world, db):
    make_delivery(db, world.home, "unknown")
    make_delivery(db, world.home, "needs_review")
    auth.login(world.home.staff.email)
    body = page(client, "/posts?view=attention")
    assert "Checking with the platform" in body
    assert "Needs your check" in body
    assert re.search(r'href="/posts\?view=attention"\s+aria-current="page"', body)
    assert "2 posts need your attention" in body


@pytest.mark.parametrize("view", ["upcoming", "attention", "published", "manual", "bogus"])
def test_every_posts_tab_renders_for_staff(client, auth, world, view):
    auth.login(world.home.staff.email)
    assert page(client, f"/posts?view={view}")


def test_upcoming_shows_due_time_in_the_organisations_zone(client, auth, world, db):
    make_delivery(db, world.home, due_at=dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC))
    auth.login(world.home.staff.email)
    assert "Wed 01 Jul 2026, 10:00 BST" in page(client, "/posts")


def test_posts_page_announces_manual_posts_that_are_due(client, auth, world, db):
    make_delivery(db, world.home, kind="manual", due_at=NOW - dt.timedelta(minutes=5))
    auth.login(world.home.staff.email)
    body = page(client, "/posts")
    assert "1 post is due to be posted by hand" in body
    assert 'href="/posts?view=manual"' in body


def test_delivery_page_explains_the_state_and_lists_attempts(client, auth, world, db):
    found = make_delivery(db, world.home, "unknown", last_error="Timed out after sending.")
    db.add(
        DeliveryAttempt(
            delivery_id=found.id,
            kind="lookup",
            number=1,
            lease_token="t",
            worker_id="w",
            idempotency_key=found.idempotency_key,
            started_at=NOW,
            outcome="lookup_unavailable",
            http_status=503,
            error="Service unavailable",
        )
    )
    db.flush()
    auth.login(world.home.staff.email)
    body = page(client, f"/posts/deliveries/{found.id}")
    assert "so it is never posted twice" in body
    assert "Timed out after sending." in body
    for shown in ("Check", "Could not check", "503", "Service unavailable"):
        assert f"<td>{shown}</td>" in body


def test_manual_delivery_offers_its_text_to_copy_and_a_posted_form(client, auth, world, db):
    found = make_delivery(db, world.home, kind="manual", text="Fair on Friday & Saturday")
    auth.login(world.home.staff.email)
    body = page(client, f"/posts/deliveries/{found.id}")
    assert re.search(r"<textarea[^>]*readonly[^>]*>Fair on Friday &amp; Saturday</textarea>", body)
    assert re.search(r"<button[^>]*data-copy-from=\"manual-text\"[^>]*hidden>Copy text<", body)
    assert f'action="/posts/deliveries/{found.id}/mark-posted"' in body


def test_staff_mark_a_manual_post_as_posted(client, auth, world, db):
    found = make_delivery(db, world.home, kind="manual")
    auth.login(world.home.staff.email)
    token = auth.csrf(f"/posts/deliveries/{found.id}")
    response = client.post(
        f"/posts/deliveries/{found.id}/mark-posted",
        data={"csrf_token": token, "url": "https://social.example/p/1"},
        follow_redirects=True,
    )
    assert "Marked as posted" in response.get_data(as_text=True)
    db.expire_all()
    assert (found.status, found.external_url) == ("published", "https://social.example/p/1")
    assert found.posted_by_id == world.home.staff.id


def test_a_bad_address_is_refused_with_the_reason(client, auth, world, db):
    found = make_delivery(db, world.home, kind="manual")
    auth.login(world.home.staff.email)
    token = auth.csrf(f"/posts/deliveries/{found.id}")
    response = client.post(
        f"/posts/deliveries/{found.id}/mark-posted",
        data={"csrf_token": token, "url": "javascript:alert(1)"},
        follow_redirects=True,
    )
    assert "must be a web address" in response.get_data(as_text=True)
    db.expire_all()
    assert found.status == "scheduled"


def test_staff_cancel_a_scheduled_post(client, auth, world, db):
    found = make_delivery(db, world.home)
    auth.login(world.home.staff.email)
    token = auth.csrf(f"/posts/deliveries/{found.id}")
    response = client.post(f"/posts/deliveries/{found.id}/cancel", data={"csrf_token": token})
    assert response.headers["Location"] == f"/posts/deliveries/{found.id}"
    db.expire_all()
    assert found.status == "cancelled"
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "delivery.cancelled"))


def test_cancelling_a_post_being_published_says_why(client, auth, world, db):
    found = make_delivery(db, world.home, "publishing")
    auth.login(world.home.staff.email)
    token = auth.csrf("/posts")
    response = client.post(
        f"/posts/deliveries/{found.id}/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    assert "being published right now" in response.get_data(as_text=True)
    db.expire_all()
    assert found.status == "publishing"


def test_needs_review_page_offers_managers_a_confirmed_publish_again(client, auth, world, db):
    found = make_delivery(db, world.home, "needs_review")
    auth.login(world.home.manager.email)
    body = page(client, f"/posts/deliveries/{found.id}")
    assert "It was posted" in body
    assert "It was not posted: publish again now" in body
    assert "you confirm that it was not posted" in body


def test_needs_review_page_does_not_offer_staff_publish_again(client, auth, world, db):
    found = make_delivery(db, world.home, "needs_review")
    auth.login(world.home.staff.email)
    body = page(client, f"/posts/deliveries/{found.id}")
    assert "It was posted" in body
    assert "publish-again" not in body


def test_staff_cannot_publish_again(client, auth, world, db):
    found = make_delivery(db, world.home, "failed")
    auth.login(world.home.staff.email)
    token = auth.csrf("/posts")
    response = client.post(
        f"/posts/deliveries/{found.id}/publish-again", data={"csrf_token": token}
    )
    assert response.status_code == 403
    db.expire_all()
    assert found.status == "failed"


def test_a_manager_publishes_again(client, auth, world, db):
    found = make_delivery(db, world.home, "failed", attempts=3)
    auth.login(world.home.manager.email)
    token = auth.csrf("/posts")
    client.post(f"/posts/deliveries/{found.id}/publish-again", data={"csrf_token": token})
    db.expire_all()
    assert (found.status, found.attempts, found.due_at) == ("scheduled", 0, NOW)


@pytest.mark.parametrize("action", ["cancel", "mark-posted", "publish-again"])
def test_actions_without_a_csrf_token_are_rejected(client, auth, world, db, app, action):
    app.config["WTF_CSRF_ENABLED"] = True
    found = make_delivery(db, world.home, "needs_review")
    auth.login(world.home.admin.email)
    response = client.post(
        f"/posts/deliveries/{found.id}/{action}", data={"url": "https://x.example/1"}
    )
    assert response.status_code == 400
    db.expire_all()
    assert found.status == "needs_review"


@pytest.mark.parametrize("suffix", ["", "/cancel", "/mark-posted", "/publish-again"])
def test_another_organisations_delivery_is_404(client, auth, world, db, suffix):
    foreign = make_delivery(db, world.other, "needs_review")
    auth.login(world.home.admin.email)
    token = auth.csrf("/posts")
    path = f"/posts/deliveries/{foreign.id}{suffix}"
    data = {"csrf_token": token, "url": "https://x.example/1"}
    response = client.post(path, data=data) if suffix else client.get(path)
    assert response.status_code == 404


def test_timeline_lists_entries_with_anchors_newest_first(client, auth, world, db):
    older = OutboxEntry(
        channel_id=world.home.channel.id,
        idempotency_key=uuid.uuid4().hex,
        text="First news",
        published_at=NOW - dt.timedelta(hours=1),
    )
    newer = OutboxEntry(
        channel_id=world.home.channel.id,
        idempotency_key=uuid.uuid4().hex,
        text="Second news",
        published_at=NOW,
    )
    db.add_all([older, newer])
    db.flush()
    auth.login(world.home.staff.email)
    body = page(client, "/timeline")
    assert f'id="entry-{older.id}"' in body and f'id="entry-{newer.id}"' in body
    assert body.index("Second news") < body.index("First news")


def test_empty_timeline_says_so(client, auth, world):
    auth.login(world.home.staff.email)
    assert "Nothing has been published to the outbox yet" in page(client, "/timeline")


def test_channel_health_shows_why_and_offers_admins_resume(client, auth, world, db):
    world.home.channel.status = "needs_reauth"
    world.home.channel.status_detail = "The access token was revoked."
    db.flush()
    auth.login(world.home.admin.email)
    body = page(client, "/settings/channels")
    assert "Reconnect needed" in body and "The access token was revoked." in body
    assert f"/settings/channels/{world.home.channel.id}/resume" in body


def test_managers_see_channel_health_without_resume(client, auth, world, db):
    world.home.channel.status = "paused"
    db.flush()
    auth.login(world.home.manager.email)
    body = page(client, "/settings/channels")
    assert "/resume" not in body
    assert "An admin can resume it." in body


def test_an_admin_resumes_a_channel_from_the_page(client, auth, world, db):
    world.home.channel.status = "paused"
    db.flush()
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/channels")
    client.post(f"/settings/channels/{world.home.channel.id}/resume", data={"csrf_token": token})
    db.expire_all()
    assert world.home.channel.status == "active"


def test_a_javascript_address_is_never_a_link(client, auth, world, db):
    found = make_delivery(db, world.home, "published", external_url="javascript:alert(1)")
    auth.login(world.home.staff.email)
    body = page(client, f"/posts/deliveries/{found.id}")
    assert 'href="javascript:' not in body


@pytest.mark.parametrize("kind", ["outbox", "manual"])
def test_post_text_is_escaped_on_every_page(client, auth, world, db, kind):
    found = make_delivery(db, world.home, "failed", kind, text=XSS, last_error=XSS)
    found.channel.display_name = XSS
    found.channel.status_detail = XSS
    manual = make_delivery(db, world.home, "scheduled", kind, text=XSS)
    db.add(
        OutboxEntry(
            channel_id=world.home.channel.id,
            idempotency_key=uuid.uuid4().hex,
            text=XSS,
            link_url="https://example.org/?q=<script>",
            published_at=NOW,
        )
    )
    db.flush()
    auth.login(world.home.admin.email)
    paths = [
        "/posts",
        "/posts?view=attention",
        "/posts?view=manual",
        f"/posts/deliveries/{found.id}",
        f"/posts/deliveries/{manual.id}",
        "/timeline",
        "/settings/channels",
    ]
    for path in paths:
        body = page(client, path)
        assert "<script>alert" not in body and "<img src=x" not in body, path
    assert "&lt;script&gt;alert" in page(client, f"/posts/deliveries/{found.id}")
