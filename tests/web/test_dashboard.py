"""The dashboard page and its CSV export: rendering, sorting links, defused cells, bad filters."""

import csv
import datetime as dt
import io
import uuid

import pytest

from campaign.models import Channel, Delivery, Post
from campaign.models.metrics import MetricSnapshot
from tests.conftest import NOW

HOSTILE = '=HYPERLINK("http://evil.example","Click me")'


def _published(db, org, channel, days_ago, impressions):
    at = NOW - dt.timedelta(days=days_ago)
    post = Post(organisation_id=org.id, text="Hello", status="approved", created_at=NOW)
    delivery = Delivery(
        channel=channel,
        due_at=at,
        status="published",
        idempotency_key=uuid.uuid4().hex,
        published_at=at,
        updated_at=NOW,
    )
    post.deliveries.append(delivery)
    db.add(post)
    db.flush()
    db.add(
        MetricSnapshot(
            delivery_id=delivery.id,
            window="24h",
            source="platform",
            window_seconds=86400,
            collected_at=at + dt.timedelta(days=1),
            age_seconds=86400,
            impressions=impressions,
            likes=1,
        )
    )
    db.flush()


@pytest.fixture
def posted(db, world):
    hostile = Channel(
        organisation_id=world.home.org.id,
        kind="outbox",
        display_name=HOSTILE,
        audience="students",
        created_at=NOW,
    )
    db.add(hostile)
    db.flush()
    _published(db, world.home.org, world.home.channel, 3, 500)
    _published(db, world.home.org, world.home.channel, 10, 700)
    _published(db, world.home.org, hostile, 5, 200)
    _published(db, world.other.org, world.other.channel, 3, 99_999)
    return world


def test_the_page_shows_each_channel_for_a_manager(client, auth, posted):
    auth.login(posted.home.manager.email)
    response = client.get("/dashboard")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Outbox students" in body
    assert "1,200" in body  # the two posts' impressions
    assert "99,999" not in body  # another organisation's post
    assert 'aria-sort="descending"' in body  # the default sort, posts published
    assert 'href="/dashboard" aria-current="page">Dashboard<' in body
    assert 'id="trend-table-caption"' in body  # the chart's table alternative
    assert "too few to compare" in body


def test_staff_may_see_it_like_the_reports(client, auth, posted):
    auth.login(posted.home.staff.email)
    assert client.get("/dashboard").status_code == 200


def test_sort_links_keep_the_filters_and_flip_the_direction(client, auth, posted):
    auth.login(posted.home.admin.email)
    body = client.get("/dashboard?group=audience&sort=impressions&dir=desc").get_data(as_text=True)
    assert 'aria-sort="descending"' in body
    assert "group=audience" in body
    assert "sort=impressions&amp;dir=asc" in body or "dir=asc&amp;sort=impressions" in body


def test_csv_export_defuses_formula_cells(client, auth, posted):
    auth.login(posted.home.manager.email)
    response = client.get("/dashboard.csv?group=channel&sort=group&dir=asc")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["group", "posts_published", "posts_measured"]
    by_group = {row[0]: row for row in rows[1:]}
    assert "'" + HOSTILE in by_group
    assert HOSTILE not in by_group
    outbox = by_group["Outbox students"]
    assert outbox[1:6] == ["2", "2", "2", "1200", "0"]
    assert outbox[9] == "clicks per impression"
    assert outbox[-1] == "fewer than 5 posts: too few to compare"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "2026-13-01 is not a date in the calendar."),
        ("to=yesterday", "“yesterday” is not a date"),
        ("channel=abc", "“abc” is not a channel number."),
        ("channel=999999", "No channel 999999 in your organisation."),
        ("campaign=99999999999", "“99999999999” is not a campaign number."),
        ("framing=nope", "No framing tag nope in your organisation."),
        ("audience=aliens", "No audience aliens in your organisation."),
        ("group=colour", "“colour” is not a way to group posts."),
        ("sort=colour", "“colour” is not a column to sort by."),
        ("dir=sideways", "“sideways” is not a sort direction"),
        ("age=3y", "“3y” is not a post age the figures are read at"),
        ("trend=mood", "“mood” is not a figure the trend can show."),
        ("from=2026-03-01&to=2026-02-01", "The period ends before it starts"),
    ],
)
def test_bad_filter_values_get_a_clear_message(client, auth, posted, query, message):
    auth.login(posted.home.manager.email)
    page = client.get(f"/dashboard?{query}")
    assert page.status_code == 400
    assert message in page.get_data(as_text=True).replace("&#34;", '"')
    export = client.get(f"/dashboard.csv?{query}")
    assert export.status_code == 400
    assert message in export.get_data(as_text=True)


def test_another_organisations_channel_is_unknown(client, auth, posted):
    auth.login(posted.home.manager.email)
    response = client.get(f"/dashboard?channel={posted.other.channel.id}")
    assert response.status_code == 400
    assert f"No channel {posted.other.channel.id} in your organisation." in response.get_data(
        as_text=True
    )


def test_an_empty_period_says_so(client, auth, posted):
    auth.login(posted.home.manager.email)
    body = client.get("/dashboard?from=2025-01-01&to=2025-01-31").get_data(as_text=True)
    assert "No post was published in this period" in body


def test_sorting_a_view_again_reorders_the_same_sums(client, auth, posted):
    auth.login(posted.home.manager.email)

    def order(direction):
        page = client.get(f"/dashboard?sort=group&dir={direction}").get_data(as_text=True)
        body = page[page.index("<tbody>") :]
        return body.index("Outbox students") < body.index("HYPERLINK")

    assert order("desc") != order("asc")
