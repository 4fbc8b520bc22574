"""The post page's engagement: tracked-link clicks per day (chart and table) and the network's
figures at each age with their source, read from stored rows on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from campaign.channels.base import PlatformMetrics
from campaign.models import Delivery
from campaign.models.metrics import MetricCollectionState
from campaign.services import links
from campaign.services.metrics import SnapshotValues, store_snapshots
from tests.web.test_planning_views import staff_post

PUBLISHED = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)


def published_post(db, part, text="Fair on Friday: https://uni.example/fair"):
    post = staff_post(db, part, text=text, submit=True)
    [delivery] = post.deliveries
    db.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id)
        .values(status="published", published_at=PUBLISHED, external_id="outbox-1")
    )
    db.flush()
    return post, delivery


def test_clicks_per_day_and_figures_at_each_age_are_shown_with_their_source(
    client, auth, world, db
):
    post, delivery = published_post(db, world.home)
    published = links.ensure_links(db, [delivery.id], "https://careers.example")
    code = next(iter(published[delivery.id].codes.values()))
    link_id = links.target_for(db, code, PUBLISHED).link_id
    for at, visitor in [
        (PUBLISHED + dt.timedelta(hours=1), "a"),
        (PUBLISHED + dt.timedelta(hours=2), "a"),
        (PUBLISHED + dt.timedelta(days=2), "b"),
    ]:
        links.record_click(db, link_id, at, visitor)
    figures = PlatformMetrics(impressions=1200, likes=7, reposts=2, replies=0, quotes=None)
    store_snapshots(
        db,
        [
            SnapshotValues(delivery.id, "24h", 86400, "platform", PUBLISHED + dt.timedelta(hours=25), 90000, figures),
            SnapshotValues(delivery.id, "latest", None, "platform", PUBLISHED + dt.timedelta(days=3), 259200, figures),
        ],
    )  # fmt: skip
    db.flush()
    auth.login(world.home.staff.email)
    body = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "3</strong> tracked-link clicks (2 unique)" in body
    assert f"<code>https://careers.example/l/{code}</code> leads to" not in body  # other base
    assert f"/l/{code}</code> leads to" in body
    # Every day from the first click to the last, the empty one as zero.
    assert "Tue 10 Mar 2026" in body and "Wed 11 Mar 2026" in body and "Thu 12 Mar 2026" in body
    assert '<td>2 <span class="muted">(1)</span></td>' in body
    assert '<td>0 <span class="muted">(0)</span></td>' in body
    assert 'data-chart="clicks-data"' in body and "vendor/chart.umd.min.js" in body
    assert '"labels": ["2026-03-10", "2026-03-11", "2026-03-12"]' in body
    assert "<td>1,200</td>" in body and "the network" in body
    # Figures no reading reports (quotes, bookmarks) get no column; a reported 0 is shown as 0.
    assert '<th scope="col">Quotes</th>' not in body
    assert '<th scope="col">Bookmarks</th>' not in body
    assert "<td>0</td>" in body  # replies: a real zero
    assert 'class="badge"' not in body  # the 24h reading was on time
    store_snapshots(
        db,
        [SnapshotValues(delivery.id, "1h", 3600, "platform", PUBLISHED + dt.timedelta(hours=3), 10800, figures)],
    )  # fmt: skip
    db.flush()
    body = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert body.count('class="badge"') == 1  # read two hours past its age: marked late


def test_a_post_the_network_cannot_find_is_flagged(client, auth, world, db):
    post, delivery = published_post(db, world.home, text="No link here")
    db.add(
        MetricCollectionState(
            delivery_id=delivery.id, attempts=1, not_found_at=PUBLISHED + dt.timedelta(hours=1)
        )
    )
    db.flush()
    auth.login(world.home.staff.email)
    body = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "could not find this post" in body
    assert "vendor/chart.umd.min.js" not in body  # no clicks, no chart script


def test_an_unpublished_post_shows_no_engagement_section(client, auth, world, db):
    post = staff_post(db, world.home)
    auth.login(world.home.staff.email)
    assert 'id="engagement-h"' not in client.get(f"/posts/{post.id}").get_data(as_text=True)
