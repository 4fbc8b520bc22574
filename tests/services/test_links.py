"""Tracked links: codes, the text to publish, UTM targets, clicks and pruning, on both databases."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from sqlalchemy import event, func, select, text

from campaign.models import Campaign, Channel, Delivery, Message, Post, Variant
from campaign.models.engagement import LinkBotHit, LinkClick, LinkSalt, LinkSettings, TrackedLink
from campaign.services import links
from campaign.services.click_privacy import SaltCache, salt_for, visitor_hash
from tests import factories
from tests.conftest import NOW

BASE = "https://go.example.ac.uk"


def _org(db, slug=None):
    return factories.make_org(db, slug or f"org-{uuid.uuid4().hex[:8]}", NOW)


def _delivery(db, org, text="Apply https://careers.example.ac.uk/fair now", **post_values):
    channel = post_values.pop("channel", None) or factories.make_channel(db, org, NOW)
    post = Post(organisation_id=org.id, text=text, status="approved", created_at=NOW, **post_values)
    post.deliveries.append(
        Delivery(channel=channel, due_at=NOW, idempotency_key=uuid.uuid4().hex, updated_at=NOW)
    )
    db.add(post)
    db.flush()
    return post.deliveries[0]


def _variant(db, org, campaign_name="Graduate Fair 2027!", label="Question"):
    campaign = Campaign(organisation_id=org.id, name=campaign_name, created_at=NOW)
    message = Message(campaign=campaign, title="Fair", created_at=NOW)
    variant = Variant(message=message, label=label, text="x", audience="students", created_at=NOW)
    db.add(campaign)
    db.flush()
    return variant


# --- URLs in text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("no links here", []),
        ("See https://a.example/x.", ["https://a.example/x"]),
        ("(see https://a.example/x) and http://b.example/", ["https://a.example/x", "http://b.example/"]),
        ("Wiki https://en.wikipedia.org/wiki/Foo_(bar), ok", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("twice https://a.example/ and https://a.example/", ["https://a.example/"]),
        ("query https://a.example/p?q=1&r=2#top!", ["https://a.example/p?q=1&r=2#top"]),
        ("no scheme www.a.example or ftp://a.example/f", []),
        ("glued xhttps://a.example/", []),
        ("unicode https://例え.jp/パス?q=é", ["https://例え.jp/パス?q=é"]),
        ('"https://a.example/q" «https://b.example/»', ["https://a.example/q", "https://b.example/"]),
        ("bare https:// scheme", []),
    ],
)  # fmt: skip
def test_urls_in(text, urls):
    assert links.urls_in(text) == urls


# --- ensure_links -----------------------------------------------------------------------------


def test_ensure_links_replaces_each_url_with_its_short_link(db):
    org = _org(db)
    body = "Fair https://careers.example.ac.uk/fair, then https://x.example/a?b=1 and again https://careers.example.ac.uk/fair."
    delivery = _delivery(db, org, text=body, link_url="https://careers.example.ac.uk/fair")
    published = links.ensure_links(db, [delivery.id], BASE + "/", NOW)[delivery.id]
    fair = published.codes["https://careers.example.ac.uk/fair"]
    other = published.codes["https://x.example/a?b=1"]
    assert fair != other
    assert published.text == (
        f"Fair {BASE}/l/{fair}, then {BASE}/l/{other} and again {BASE}/l/{fair}."
    )
    assert published.link_url == f"{BASE}/l/{fair}"
    for code in (fair, other):
        assert links.looks_like_code(code) and len(code) == links.CODE_LENGTH
    stored = db.scalars(select(TrackedLink).where(TrackedLink.delivery_id == delivery.id)).all()
    assert {(link.code, link.target_url, link.organisation_id) for link in stored} == {
        (fair, "https://careers.example.ac.uk/fair", org.id),
        (other, "https://x.example/a?b=1", org.id),
    }


def test_ensure_links_is_idempotent_and_per_delivery(db):
    org = _org(db)
    first = _delivery(db, org)
    second = _delivery(db, org)
    once = links.ensure_links(db, [first.id, second.id], BASE, NOW)
    again = links.ensure_links(db, [second.id, first.id, first.id], BASE, NOW)
    assert once == again
    # The same URL in two deliveries has two codes: clicks are told apart per delivery.
    assert set(once[first.id].codes.values()).isdisjoint(once[second.id].codes.values())
    count = db.scalar(
        select(func.count())
        .select_from(TrackedLink)
        .where(TrackedLink.delivery_id.in_([first.id, second.id]))
    )
    assert count == 2


def test_ensure_links_leaves_text_without_links_and_unknown_ids(db):
    org = _org(db)
    plain = _delivery(db, org, text="No link, just words.")
    own = _delivery(db, org, text=f"Already tracked {BASE}/l/AbCdEf123 here")
    long_url = "https://a.example/" + "x" * 2100
    too_long = _delivery(db, org, text=f"Long {long_url}")
    result = links.ensure_links(db, [plain.id, own.id, too_long.id, 2_000_000_000], BASE, NOW)
    assert result[plain.id] == links.PublishedText("No link, just words.", None, {})
    assert result[own.id].text == f"Already tracked {BASE}/l/AbCdEf123 here"
    assert result[too_long.id].text == f"Long {long_url}"
    assert 2_000_000_000 not in result
    assert links.ensure_links(db, [], BASE, NOW) == {}


def test_ensure_links_for_fifty_deliveries_takes_a_few_statements(db):
    org = _org(db)
    channel = factories.make_channel(db, org, NOW)
    ids = [
        _delivery(db, org, text=f"Post {n} https://a.example/{n} https://b.example/", channel=channel).id
        for n in range(50)
    ]  # fmt: skip
    statements: list[str] = []

    def count(*_args):
        statements.append("x")

    bind = db.connection()
    event.listen(bind, "before_cursor_execute", count)
    try:
        result = links.ensure_links(db, ids, BASE, NOW)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(result) == 50
    assert all(len(published.codes) == 2 for published in result.values())
    assert len(statements) <= 5
    codes = [code for published in result.values() for code in published.codes.values()]
    assert len(set(codes)) == 100


def test_a_colliding_code_is_replaced_by_a_fresh_one(db, monkeypatch):
    org = _org(db)
    first = _delivery(db, org)
    taken = links.ensure_links(db, [first.id], BASE, NOW)[first.id].codes
    (taken_code,) = taken.values()
    second = _delivery(db, org)
    fresh = iter([taken_code, "Fresh0001"])
    monkeypatch.setattr(links, "new_code", lambda: next(fresh))
    published = links.ensure_links(db, [second.id], BASE, NOW)[second.id]
    assert list(published.codes.values()) == ["Fresh0001"]


def _wait_until_blocked(factory, dialect):
    if dialect == "sqlite":
        time.sleep(0.2)  # no lock table to watch; the second caller waits on the busy timeout
        return
    deadline = time.monotonic() + 5
    with factory() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
    pytest.fail("the second caller never waited for the first one's insert")


def test_two_callers_racing_agree_on_one_code(factory):
    with factory() as session:
        org = _org(session)
        delivery_id = _delivery(session, org).id
        session.commit()
    seen: list[object] = []

    def second_caller():
        with factory() as session:
            try:
                seen.append(links.ensure_links(session, [delivery_id], BASE, NOW))
                session.commit()
            except Exception as exc:  # reported by the assertion below
                seen.append(exc)

    with factory() as first:
        mine = links.ensure_links(first, [delivery_id], BASE, NOW)
        thread = threading.Thread(target=second_caller)
        thread.start()
        _wait_until_blocked(factory, first.get_bind().dialect.name)
        first.commit()
    thread.join(timeout=30)
    assert seen == [mine]
    with factory() as session:
        count = session.scalar(
            select(func.count())
            .select_from(TrackedLink)
            .where(TrackedLink.delivery_id == delivery_id)
        )
        assert count == 1


# --- UTM parameters and targets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/p", "https://a.example/p?utm_source=x&utm_medium=social"),
        ("https://a.example/p?id=7&q=a%20b", "https://a.example/p?id=7&q=a%20b&utm_source=x&utm_medium=social"),
        ("https://a.example/p#apply", "https://a.example/p?utm_source=x&utm_medium=social#apply"),
        ("https://a.example/p?x=1#a?b", "https://a.example/p?x=1&utm_source=x&utm_medium=social#a?b"),
        ("https://a.example/p?utm_source=newsletter", "https://a.example/p?utm_source=newsletter&utm_medium=social"),
        ("https://a.example/p?UTM_Medium=email", "https://a.example/p?UTM_Medium=email&utm_source=x"),
        ("https://a.example/p?", "https://a.example/p?utm_source=x&utm_medium=social"),
    ],
)  # fmt: skip
def test_add_query_keeps_what_is_there(url, expected):
    assert links.add_query(url, {"utm_source": "x", "utm_medium": "social"}) == expected


def test_add_query_can_override_existing_utm_and_encodes_values():
    url = "https://a.example/p?utm_source=newsletter&keep=1&utm_source=again"
    params = {"utm_source": "x", "utm_content": "é & =/"}
    assert links.add_query(url, params, override_existing=True) == (
        "https://a.example/p?keep=1&utm_source=x&utm_content=%C3%A9%20%26%20%3D%2F"
    )
    assert links.add_query(url, {}) == url


def test_slugs():
    assert links.campaign_slug(3, "Graduate Fair 2027!") == "graduate-fair-2027"
    assert links.campaign_slug(3, "Ünïcödé café") == "unicode-cafe"
    assert links.campaign_slug(3, "日本語") == "campaign-3"
    assert links.variant_slug(12, "Question (short)") == "question-short-v12"
    assert links.variant_slug(12, "—") == "variant-v12"
    assert len(links.slugify("a" * 200, "x")) == 60


def _code(db, delivery):
    return next(iter(links.ensure_links(db, [delivery.id], BASE, NOW)[delivery.id].codes.values()))


def test_target_for_adds_default_utm_parameters(db):
    org = _org(db)
    variant = _variant(db, org)
    delivery = _delivery(
        db, org, text="Go https://careers.example.ac.uk/fair?ref=home#dates", variant_id=variant.id
    )
    target = links.target_for(db, _code(db, delivery), NOW)
    assert target is not None
    assert target.location == (
        "https://careers.example.ac.uk/fair?ref=home&utm_source=outbox&utm_medium=social"
        f"&utm_campaign=graduate-fair-2027&utm_content=question-v{variant.id}#dates"
    )
    link_id = db.scalar(select(TrackedLink.id).where(TrackedLink.delivery_id == delivery.id))
    assert target.link_id == link_id


def test_target_without_variant_or_campaign_omits_those(db):
    org = _org(db)
    channel = Channel(
        organisation_id=org.id, kind="manual", display_name="LinkedIn (careers)",
        audience="students", created_at=NOW,
    )  # fmt: skip
    db.add(channel)
    delivery = _delivery(db, org, channel=channel)
    target = links.target_for(db, _code(db, delivery), NOW)
    assert target.location == (
        "https://careers.example.ac.uk/fair?utm_source=linkedin-careers&utm_medium=social"
    )


def test_target_follows_the_organisation_settings(db):
    org = _org(db)
    variant = _variant(db, org)
    delivery = _delivery(
        db, org, text="https://a.example/?utm_source=poster", variant_id=variant.id
    )
    code = _code(db, delivery)
    settings = LinkSettings(
        organisation_id=org.id, override_existing=True, source_mode="channel",
        medium_mode="off", campaign_mode="custom", campaign_value="autumn fair",
        content_mode="off",
    )  # fmt: skip
    db.add(settings)
    db.flush()
    assert links.target_for(db, code, NOW).location == (
        "https://a.example/?utm_source=outbox-students&utm_campaign=autumn%20fair"
    )
    settings.utm_enabled = False
    db.flush()
    assert links.target_for(db, code, NOW).location == "https://a.example/?utm_source=poster"


def test_target_with_unicode_is_an_ascii_uri(db):
    org = _org(db)
    delivery = _delivery(db, org, text="https://例え.jp/パス?q=é")
    location = links.target_for(db, _code(db, delivery), NOW).location
    assert location == (
        "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%C3%A9&utm_source=outbox&utm_medium=social"
    )
    location.encode("ascii")


@pytest.mark.parametrize("code", ["nope12345", "", "../../etc", "a" * 40, "café12345", "//evil"])
def test_unknown_or_malformed_codes_have_no_target(db, code):
    assert links.target_for(db, code, NOW) is None


# --- clicks -----------------------------------------------------------------------------------


def _link_id(db):
    org = _org(db)
    delivery = _delivery(db, org)
    links.ensure_links(db, [delivery.id], BASE, NOW)
    return db.scalar(select(TrackedLink.id).where(TrackedLink.delivery_id == delivery.id)), delivery


def test_clicks_are_unique_per_visitor_per_day(db):
    link_id, delivery = _link_id(db)
    salts = SaltCache()
    salt = salts.get(db, NOW.date(), NOW)
    alice = visitor_hash(salt, "192.0.2.1", "Firefox")
    bob = visitor_hash(salt, "192.0.2.2", "Firefox")
    assert alice != bob and len(alice) == 32
    firsts = [
        links.record_click(db, link_id, NOW, alice),
        links.record_click(db, link_id, NOW + dt.timedelta(minutes=1), alice),
        links.record_click(db, link_id, NOW + dt.timedelta(minutes=2), bob),
    ]
    assert firsts == [True, False, True]
    counts = links.click_counts(db, [delivery.id])[delivery.id]
    assert counts == links.ClickCounts(clicks=3, unique=2, bot_hits=0)


def test_the_salt_rotates_at_midnight_utc(db):
    link_id, delivery = _link_id(db)
    before = dt.datetime(2026, 3, 2, 23, 59, tzinfo=dt.UTC)
    after = dt.datetime(2026, 3, 3, 0, 1, tzinfo=dt.UTC)
    salts = SaltCache()
    late, early = salts.get(db, before.date(), before), salts.get(db, after.date(), after)
    assert late != early
    # Every process reads the same stored salt for a day.
    assert salt_for(db, before.date(), after) == late
    assert SaltCache().get(db, after.date(), after) == early
    who = ("192.0.2.1", "Safari")
    assert links.record_click(db, link_id, before, visitor_hash(late, *who))
    assert links.record_click(db, link_id, after, visitor_hash(early, *who))
    assert not links.record_click(db, link_id, after, visitor_hash(early, *who))
    assert links.clicks_by_day(db, delivery.id) == [
        (before.date(), 1, 1),
        (after.date(), 2, 1),
    ]
    days = db.scalars(select(LinkClick.day).where(LinkClick.link_id == link_id)).all()
    assert sorted(days) == [before.date(), after.date(), after.date()]


def test_a_racing_duplicate_first_click_is_stored_as_a_repeat(db, monkeypatch):
    link_id, delivery = _link_id(db)
    hashed = visitor_hash(b"s" * 32, "192.0.2.1", "Edge")
    assert links.record_click(db, link_id, NOW, hashed)
    # What a concurrent request would do: insert a first click that the index then refuses.
    from sqlalchemy import insert as core_insert

    forced = core_insert(LinkClick.__table__).values(
        link_id=link_id, clicked_at=NOW, day=NOW.date(), visitor_hash=hashed, is_first_today=True
    )
    monkeypatch.setattr(
        links, "_FIRST_CLICK", forced.returning(LinkClick.__table__.c.is_first_today)
    )
    assert links.record_click(db, link_id, NOW, hashed) is False
    assert links.click_counts(db, [delivery.id])[delivery.id] == links.ClickCounts(2, 1, 0)


def test_bot_hits_are_kept_apart_and_truncated(db):
    link_id, delivery = _link_id(db)
    links.record_bot_hit(db, link_id, NOW, "Mastodon", "http.rb/5.1.1 " + "x" * 500)
    hit = db.scalars(select(LinkBotHit).where(LinkBotHit.link_id == link_id)).one()
    assert hit.bot == "Mastodon" and len(hit.user_agent) == 300 and hit.at == NOW
    assert links.click_counts(db, [delivery.id])[delivery.id] == links.ClickCounts(0, 0, 1)


# --- pruning ----------------------------------------------------------------------------------


def test_prune_deletes_old_rows_and_salts_and_clears_old_hashes(db):
    link_id, delivery = _link_id(db)
    db.execute(LinkSalt.__table__.delete())
    today = NOW
    for days_ago in (0, 1, 2, 3):
        salt_for(db, (today - dt.timedelta(days=days_ago)).date(), today)
    for days_ago in (0, 2, 10, 11):
        moment = today - dt.timedelta(days=days_ago)
        links.record_click(db, link_id, moment, f"hash{days_ago}")
    for days_ago in (1, 5):
        links.record_bot_hit(db, link_id, today - dt.timedelta(days=days_ago), "X", "Twitterbot")

    pruned = links.prune(db, today, click_retention_days=10, bot_hit_retention_days=3)
    assert pruned == links.Pruned(clicks=1, bot_hits=1, salts=2, hashes_cleared=2)
    left = db.execute(
        select(LinkClick.day, LinkClick.visitor_hash).where(LinkClick.link_id == link_id)
    ).all()
    assert sorted(left) == [
        ((today - dt.timedelta(days=10)).date(), None),
        ((today - dt.timedelta(days=2)).date(), None),
        (today.date(), "hash0"),
    ]
    assert sorted(db.scalars(select(LinkSalt.day)).all()) == [
        (today - dt.timedelta(days=1)).date(),
        today.date(),
    ]
    assert db.scalar(select(func.count()).select_from(LinkBotHit)) == 1
    # Unique counts survive the clearing of hashes.
    assert links.click_counts(db, [delivery.id])[delivery.id] == links.ClickCounts(3, 3, 1)


def test_prune_refuses_a_zero_retention(db):
    with pytest.raises(ValueError, match="at least one day"):
        links.prune(db, NOW, 0, 30)


def test_clicks_and_bot_hits_through_the_engine_commit_on_their_own(factory, monkeypatch):
    engine = factory.kw["bind"]
    with factory() as session:
        org = _org(session)
        delivery = _delivery(session, org)
        links.ensure_links(session, [delivery.id], BASE, NOW)
        session.commit()
        link_id = session.scalar(
            select(TrackedLink.id).where(TrackedLink.delivery_id == delivery.id)
        )
    hashed = visitor_hash(b"e" * 32, "192.0.2.1", "Firefox")
    assert links.record_click(engine, link_id, NOW, hashed) is True
    assert links.record_click(engine, link_id, NOW, hashed) is False
    # A concurrent first click that the index refuses is stored as a repeat.
    from sqlalchemy import insert as core_insert

    forced = core_insert(LinkClick.__table__).values(is_first_today=True)
    monkeypatch.setattr(
        links, "_FIRST_CLICK", forced.returning(LinkClick.__table__.c.is_first_today)
    )
    assert links.record_click(engine, link_id, NOW, hashed) is False
    links.record_bot_hit(engine, link_id, NOW, "Discord", "Discordbot/2.0")
    with factory() as session:
        assert links.click_counts(session, [delivery.id])[delivery.id] == links.ClickCounts(3, 1, 1)


def test_utm_settings_are_saved_and_checked(db):
    org = _org(db)
    assert links.utm_settings(db, org.id) == links.UtmSettings()
    chosen = links.UtmSettings(
        source_mode="custom",
        source_value=" uni-social ",
        campaign_mode="off",
        override_existing=True,
    )
    saved = links.save_utm_settings(db, org.id, chosen, NOW)
    assert saved.source_value == "uni-social" and saved.campaign_mode == "off"
    assert links.utm_settings(db, org.id) == saved
    variant = _variant(db, org)
    delivery = _delivery(
        db, org, text="https://a.example/?utm_medium=poster", variant_id=variant.id
    )
    assert links.target_for(db, _code(db, delivery), NOW).location == (
        f"https://a.example/?utm_source=uni-social&utm_medium=social&utm_content=question-v{variant.id}"
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"source_mode": "everywhere"}, "source mode must be one of network, channel, custom, off"),
        ({"content_mode": "framing"}, "content mode must be one of variant, custom, off"),
        ({"medium_value": "x" * 101}, "medium value is too long"),
        ({"campaign_mode": "custom", "campaign_value": "a\nb"}, "control characters"),
        ({"campaign_mode": "custom", "campaign_value": "  "}, "campaign value is empty"),
    ],
)
def test_bad_utm_settings_are_refused_with_a_clear_message(db, values, problem):
    org = _org(db)
    with pytest.raises(links.ServiceError, match=problem):
        links.save_utm_settings(db, org.id, links.UtmSettings(**values), NOW)
    assert db.get(LinkSettings, org.id) is None


def test_clicks_by_hour_buckets_in_utc(db):
    link_id, delivery = _link_id(db)
    moments = [
        dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 9, 59, 59, tzinfo=dt.UTC),
        # 11:30 in UTC+1 is 10:30 UTC.
        dt.datetime(2026, 3, 2, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    ]
    for n, moment in enumerate(moments):
        links.record_click(db, link_id, moment, f"visitor{n % 2}")
    assert links.clicks_by_hour(db, delivery.id) == [
        (dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), 2, 2),
        (dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC), 1, 0),
    ]
    assert links.clicks_by_hour(db, 2_000_000_000) == []
