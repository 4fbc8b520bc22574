"""The dashboard's figures equal sums worked out by hand on a small fixture, on both databases."""

import datetime as dt
import hashlib
import uuid

import pytest

from campaign.analysis.proportions import wilson_interval
from campaign.models import Campaign, Channel, Delivery, Message, Post, Variant
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import dashboard as service
from tests.conftest import NOW
from tests.factories import make_org

H = 3600
DAY = 86400
START, END = dt.date(2026, 2, 16), dt.date(2026, 3, 2)


def _channel(db, org, name, audience="students", kind="outbox"):
    channel = Channel(
        organisation_id=org.id, kind=kind, display_name=name, audience=audience, created_at=NOW
    )
    db.add(channel)
    db.flush()
    return channel


def _variant(message, label, audience, tags):
    variant = Variant(message=message, label=label, text=label, audience=audience, created_at=NOW)
    variant.framing_tags = tags
    return variant


def _published(db, org, channel, at, variant=None, status="published"):
    post = Post(
        organisation_id=org.id,
        variant_id=variant.id if variant else None,
        text="Hello",
        status="approved",
        created_at=NOW,
    )
    delivery = Delivery(
        channel=channel,
        due_at=at,
        status=status,
        idempotency_key=uuid.uuid4().hex,
        published_at=at if status == "published" else None,
        updated_at=NOW,
    )
    post.deliveries.append(delivery)
    db.add(post)
    db.flush()
    return delivery


def _snapshot(db, delivery, window, age, source="platform", **figures):
    db.add(
        MetricSnapshot(
            delivery_id=delivery.id,
            window=window,
            source=source,
            window_seconds=None if window == "latest" else age,
            collected_at=delivery.published_at + dt.timedelta(seconds=age),
            age_seconds=age,
            **figures,
        )
    )
    db.flush()


def _clicks(db, delivery, *after_seconds):
    code = uuid.uuid4().hex[:10]
    link = TrackedLink(
        code=code,
        delivery_id=delivery.id,
        organisation_id=delivery.post.organisation_id,
        target_url=f"https://example.ac.uk/{code}",
        target_sha256=hashlib.sha256(code.encode()).hexdigest(),
        created_at=NOW,
    )
    db.add(link)
    db.flush()
    for seconds in after_seconds:
        at = delivery.published_at + dt.timedelta(seconds=seconds)
        db.add(LinkClick(link_id=link.id, clicked_at=at, day=at.date()))
    db.flush()


@pytest.fixture
def fixture(db):
    """Two channels (A reports impressions, B does not), two campaigns, and posts around them.

    d1 A V1 (context)            3 d old: 1 h and 24 h readings (stored 24 h first, read 90 s
                                 late: still the 24 h figure); 3 clicks by 24 h (one exactly at
                                 24 h), 2 after
    d2 A V2 (question, statistic) 2 d old: readings at 1 h and 30 h (too late to be the 24 h
                                 figure): at 24 h the 1 h one counts
    d3 B V3 (no tag, employers)  9 d old: a 24 h reading without impressions, a manual one at
                                 20 h; 4 clicks
    d4 B V1                      4 d old: never read; 2 clicks
    d5 A no variant              2 h old: too young for 24 h figures; a 1 h reading and a click
    not counted: a scheduled post, one published before the period, another organisation's.
    """
    home, other = make_org(db, "dash-home", NOW), make_org(db, "dash-other", NOW)
    a = _channel(db, home, "Alpha")
    b = _channel(db, home, "Beta", audience="graduates", kind="manual")
    tags = {t.key: t for t in home.framing_tags}
    c1 = Campaign(organisation_id=home.id, name="Exams", created_at=NOW)
    m1 = Message(campaign=c1, title="Outcomes", created_at=NOW)
    v1 = _variant(m1, "V1", "students", [tags["context"]])
    v2 = _variant(m1, "V2", "graduates", [tags["question"], tags["statistic"]])
    c2 = Campaign(organisation_id=home.id, name="Fair", created_at=NOW)
    m2 = Message(campaign=c2, title="Fair", created_at=NOW)
    v3 = _variant(m2, "V3", "employers", [])
    db.add_all([c1, c2])
    db.flush()

    d1 = _published(db, home, a, NOW - dt.timedelta(days=3), v1)
    _snapshot(db, d1, "24h", DAY + 90, impressions=400, likes=5, reposts=1, replies=0)
    _snapshot(db, d1, "1h", H + 90, impressions=100, likes=1, reposts=0, replies=0)
    _snapshot(db, d1, "latest", 2 * DAY, impressions=900, likes=9, reposts=3, replies=2)
    _clicks(db, d1, 60, 3 * H, DAY, DAY + 5, 2 * DAY)
    d2 = _published(db, home, a, NOW - dt.timedelta(days=2), v2)
    _snapshot(db, d2, "30h", 30 * H, impressions=300, likes=3)
    _snapshot(db, d2, "1h", H, impressions=50)
    _clicks(db, d2, 120)
    d3 = _published(db, home, b, NOW - dt.timedelta(days=9), v3)
    _snapshot(db, d3, "24h", DAY, likes=4, reposts=2, replies=1)
    _snapshot(db, d3, "24h", 20 * H, source="manual", likes=1, reposts=1, replies=1)
    _clicks(db, d3, 10, 20, 30, 40)
    d4 = _published(db, home, b, NOW - dt.timedelta(days=4), v1)
    _clicks(db, d4, 100, 200)
    d5 = _published(db, home, a, NOW - dt.timedelta(hours=2))
    _snapshot(db, d5, "1h", H, impressions=30)
    _clicks(db, d5, 60)

    _published(db, home, a, NOW + dt.timedelta(hours=1), v1, status="scheduled")
    early = _published(db, home, a, NOW - dt.timedelta(days=40), v1)
    _snapshot(db, early, "24h", DAY, impressions=1000)
    _clicks(db, early, 10)
    stranger = _published(db, other, _channel(db, other, "Theirs"), NOW - dt.timedelta(days=3))
    _snapshot(db, stranger, "24h", DAY, impressions=5000, likes=50)
    _clicks(db, stranger, 10, 20)
    return {"org": home, "a": a, "b": b, "c1": c1, "c2": c2}


def _run(db, org, **changes):
    filters = service.Filters(organisation_id=org.id, start=START, end=END, **changes)
    return service.dashboard(db, filters, "Europe/London", NOW)


def _by_label(found):
    return {row.label: row for row in found.rows}


def test_figures_by_channel_equal_the_hand_sums(db, fixture):
    rows = _by_label(_run(db, fixture["org"], group_by="channel"))
    assert set(rows) == {"Alpha", "Beta"}
    alpha, beta = rows["Alpha"], rows["Beta"]
    # d1: the 24 h reading (400 impressions), 3 clicks by 24 h; d2: the 1 h reading, 1 click.
    assert (alpha.posts, alpha.measured, alpha.with_figures) == (3, 2, 2)
    assert (alpha.impressions, alpha.posts_with_impressions, alpha.clicks) == (450, 2, 4)
    assert (alpha.likes, alpha.reposts, alpha.replies) == (5, 1, 0)
    assert alpha.basis == "impressions"
    assert alpha.rate == pytest.approx(4 / 450)
    assert alpha.rate_95 == pytest.approx(wilson_interval(4, 450))
    # d3: the network's 24 h reading (no impressions), d4 unread; 4 + 2 clicks over 2 posts.
    assert (beta.posts, beta.measured, beta.with_figures) == (2, 2, 1)
    assert (beta.impressions, beta.posts_with_impressions, beta.clicks) == (None, 0, 6)
    assert (beta.likes, beta.reposts, beta.replies) == (4, 2, 1)
    assert beta.basis == "per_post"
    assert beta.rate == pytest.approx(3.0)
    assert beta.rate_95 is None
    assert alpha.too_few and beta.too_few


def test_total_counts_each_delivery_once(db, fixture):
    total = _run(db, fixture["org"], group_by="framing").total
    assert (total.posts, total.measured, total.with_figures) == (5, 4, 3)
    assert (total.impressions, total.clicks, total.clicks_with_impressions) == (450, 10, 4)


def test_a_later_age_reads_later_snapshots_and_clicks(db, fixture):
    rows = _by_label(_run(db, fixture["org"], group_by="channel", age_seconds=2 * DAY))
    # d1: its "latest" reading at 48 h (900), 5 clicks; d2: the 30 h reading (300), 1 click.
    assert (rows["Alpha"].impressions, rows["Alpha"].clicks, rows["Alpha"].measured) == (1200, 6, 2)
    assert rows["Alpha"].likes == 12


def test_grouping_by_campaign_framing_and_audience(db, fixture):
    campaigns = _by_label(_run(db, fixture["org"], group_by="campaign"))
    assert {k: (r.posts, r.measured, r.clicks) for k, r in campaigns.items()} == {
        "Exams": (3, 3, 6),
        "Fair": (1, 1, 4),
        service.NO_CAMPAIGN: (1, 0, 0),
    }
    assert campaigns[service.NO_CAMPAIGN].basis is None
    framings = _by_label(_run(db, fixture["org"], group_by="framing"))
    assert {k: (r.posts, r.clicks) for k, r in framings.items()} == {
        "Context": (2, 5),
        "Question": (1, 1),
        "Statistic": (1, 1),
        service.NO_TAG: (2, 4),
    }
    audiences = _by_label(_run(db, fixture["org"], group_by="audience"))
    # A post without a framing takes its channel's audience.
    assert {k: r.posts for k, r in audiences.items()} == {
        "Students": 3,
        "Graduates": 1,
        "Employers": 1,
    }


def test_grouping_by_week_and_month_uses_local_weeks(db, fixture):
    weeks = _run(db, fixture["org"], group_by="week", sort="group", descending=False)
    assert [(r.key, r.posts) for r in weeks.rows] == [
        (dt.date(2026, 2, 16), 1),
        (dt.date(2026, 2, 23), 3),
        (dt.date(2026, 3, 2), 1),
    ]
    assert weeks.rows[0].label == "Week of 16 Feb 2026"
    months = _run(db, fixture["org"], group_by="month", sort="group", descending=False)
    assert [(r.label, r.posts) for r in months.rows] == [("February 2026", 4), ("March 2026", 1)]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"channel_ids": "b"}, {"Beta": 2}),
        ({"campaign_ids": "c2"}, {"Beta": 1}),
        ({"framing_tags": ("question",)}, {"Alpha": 1}),
        ({"framing_tags": ("context", "question")}, {"Alpha": 2, "Beta": 1}),
        ({"audiences": ("graduates",)}, {"Alpha": 1}),
    ],
)
def test_filters_narrow_the_posts(db, fixture, changes, expected):
    resolved = {
        key: (fixture[value].id,) if isinstance(value, str) else value
        for key, value in changes.items()
    }
    found = _run(db, fixture["org"], group_by="channel", **resolved)
    assert {r.label: r.posts for r in found.rows} == expected


def test_a_period_without_posts_is_empty(db, fixture):
    filters = service.Filters(
        organisation_id=fixture["org"].id, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31)
    )
    found = service.dashboard(db, filters, "Europe/London", NOW)
    assert found.rows == [] and found.total is None and found.series == []


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("clicks", True, ["Beta", "Alpha"]),
        ("clicks", False, ["Alpha", "Beta"]),
        ("group", False, ["Alpha", "Beta"]),
        ("group", True, ["Beta", "Alpha"]),
        ("posts", True, ["Alpha", "Beta"]),
        # Beta reports no impressions: it goes last whichever way.
        ("impressions", True, ["Alpha", "Beta"]),
        ("impressions", False, ["Alpha", "Beta"]),
    ],
)
def test_sorting(db, fixture, sort, descending, expected):
    found = _run(db, fixture["org"], sort=sort, descending=descending)
    assert [r.label for r in found.rows] == expected


def test_trend_has_a_point_per_week_per_group(db, fixture):
    found = _run(db, fixture["org"], group_by="channel")
    assert found.weeks == [dt.date(2026, 2, 16), dt.date(2026, 2, 23), dt.date(2026, 3, 2)]
    series = {s.label: s.points for s in found.series}
    assert [p.posts if p else 0 for p in series["Alpha"]] == [0, 2, 1]
    assert [p.clicks if p else 0 for p in series["Beta"]] == [4, 2, 0]
    weekly = _run(db, fixture["org"], group_by="month").series
    assert [(s.label, [p.posts if p else 0 for p in s.points]) for s in weekly] == [
        ("All posts", [1, 3, 1])
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channel_ids": (999_999,)}, "No channel 999999 in your organisation."),
        ({"campaign_ids": (999_999,)}, "No campaign 999999 in your organisation."),
        ({"framing_tags": ("nope",)}, "No framing tag nope in your organisation."),
        ({"audiences": ("aliens",)}, "No audience aliens in your organisation."),
        ({"group_by": "colour"}, "“colour” is not a way to group posts."),
        ({"sort": "colour"}, "“colour” is not a column to sort by."),
        ({"start": END, "end": START}, "The period ends before it starts"),
        ({"start": dt.date(2020, 1, 1)}, "Choose a period of at most"),
    ],
)
def test_unknown_filter_values_are_named(db, fixture, changes, message):
    filters = {"start": START, "end": END, **changes}
    with pytest.raises(service.FilterError) as raised:
        service.dashboard(
            db,
            service.Filters(organisation_id=fixture["org"].id, **filters),
            "Europe/London",
            NOW,
        )
    assert message in str(raised.value)


def test_another_organisations_ids_are_unknown(db, fixture):
    other = make_org(db, "dash-third", NOW)
    theirs = _channel(db, other, "Theirs too")
    with pytest.raises(service.FilterError, match="No channel"):
        _run(db, fixture["org"], channel_ids=(theirs.id,))
