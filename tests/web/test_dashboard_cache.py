"""The dashboard's cache of recent views: sums and rendered content, per organisation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import template_rendered

from campaign.models import Channel
from campaign.services import dashboard as service
from campaign.web import dashboard as view
from tests.conftest import NOW
from tests.web.test_dashboard import _published

CONTENT = "dashboard/_content.html"
HOME_ONLY = "Home careers news"


@pytest.fixture
def posted(db: Any, world: Any) -> Any:
    """Two organisations' posts: 1,200 impressions at home (and a channel of its own), 99,999
    at the other."""
    home_only = Channel(
        organisation_id=world.home.org.id,
        kind="outbox",
        display_name=HOME_ONLY,
        audience="employers",
        created_at=NOW,
    )
    db.add(home_only)
    db.flush()
    _published(db, world.home.org, world.home.channel, 3, 500)
    _published(db, world.home.org, world.home.channel, 10, 700)
    _published(db, world.home.org, home_only, 5, 200)
    _published(db, world.other.org, world.other.channel, 3, 99_999)
    return world


@pytest.fixture
def rendered(app: Any) -> Iterator[list[str]]:
    """The names of the templates rendered, in order."""
    names: list[str] = []

    def record(_sender: Any, template: Any, context: Any, **_extra: Any) -> None:
        names.append(template.name)

    template_rendered.connect(record, app)
    yield names
    template_rendered.disconnect(record, app)


@pytest.fixture
def summed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The organisation of each view summed afresh."""
    made: list[int] = []
    real = service.dashboard

    def spy(session: Any, filters: service.Filters, *args: Any) -> service.Dashboard:
        made.append(filters.organisation_id)
        return real(session, filters, *args)

    monkeypatch.setattr(view.service, "dashboard", spy)
    return made


def _content(page: str) -> str:
    """The page's own content: what the cache may hold, without the member's layout."""
    return page[page.index("<h1>Dashboard</h1>") : page.index("</main>")]


def _table(page: str) -> str:
    return page[page.index("<tbody>") : page.index("</tbody>")]


def test_a_view_shown_again_is_served_as_rendered(client, auth, posted, rendered, summed):
    auth.login(posted.home.manager.email)
    first = client.get("/dashboard?group=channel&trend=rate")
    rendered.clear()
    second = client.get("/dashboard?group=channel&trend=rate")
    assert first.status_code == second.status_code == 200
    assert CONTENT not in rendered and "dashboard/index.html" in rendered
    assert _content(second.get_data(as_text=True)) == _content(first.get_data(as_text=True))
    # The page around it is still the member's own: a fresh nonce on the chart's scripts.
    nonces = [re.findall(r'nonce="([^"]+)"', r.get_data(as_text=True)) for r in (first, second)]
    assert nonces[0] and set(nonces[0]).isdisjoint(nonces[1])
    assert summed == [posted.home.org.id]


def test_another_order_or_trend_reuses_the_sums_but_not_the_content(
    client, auth, posted, rendered, summed
):
    auth.login(posted.home.manager.email)
    client.get("/dashboard")
    rendered.clear()
    page = client.get("/dashboard?sort=group&dir=asc&trend=posts").get_data(as_text=True)
    assert CONTENT in rendered
    assert 'aria-sort="ascending"' in page
    assert 'aria-current="true">Posts published<' in page
    assert summed == [posted.home.org.id]


def test_a_cached_view_is_never_shown_to_another_organisation(
    client, auth, posted, rendered, summed
):
    auth.login(posted.home.manager.email)
    home = client.get("/dashboard").get_data(as_text=True)
    assert "1,200" in home and "99,999" not in home
    auth.logout()
    auth.login(posted.other.manager.email)
    rendered.clear()
    other = client.get("/dashboard").get_data(as_text=True)
    assert CONTENT in rendered  # rendered for this organisation, not taken from the cache
    assert "99,999" in other and "1,200" not in other
    assert HOME_ONLY not in other  # nor is the home organisation's channel in its form
    auth.logout()
    auth.login(posted.home.staff.email)
    again = client.get("/dashboard").get_data(as_text=True)
    assert _table(again) == _table(home)
    assert summed == [posted.home.org.id, posted.other.org.id]


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard.csv"])
def test_members_without_access_are_refused_a_cached_view(client, auth, posted, db, path):
    auth.login(posted.home.staff.email)
    assert client.get(path).status_code == 200
    auth.logout()
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    auth.login(posted.home.staff.email)
    posted.home.staff.is_active = False
    db.flush()
    deactivated = client.get(path)
    assert deactivated.status_code == 302 and "/login" in deactivated.headers["Location"]
    assert "1,200" not in deactivated.get_data(as_text=True)


def test_a_cached_view_still_checks_the_sort_asked_for(client, auth, posted, summed):
    auth.login(posted.home.manager.email)
    assert client.get("/dashboard").status_code == 200
    page = client.get("/dashboard?sort=colour")
    assert page.status_code == 400
    assert "“colour” is not a column to sort by." in page.get_data(as_text=True)
    export = client.get("/dashboard.csv?sort=colour")
    assert export.status_code == 400
    assert summed == [posted.home.org.id]


def test_a_new_post_shows_once_the_cached_sums_expire(app, client, auth, posted, db):
    auth.login(posted.home.manager.email)
    assert "1,200" in client.get("/dashboard").get_data(as_text=True)
    _published(db, posted.home.org, posted.home.channel, 4, 300)
    # Within the minute the page shows the sums (and their content) as they were made...
    assert "1,200" in _table(client.get("/dashboard").get_data(as_text=True))
    # ...and once they expire, the new post's figures.
    app.extensions["campaign.dashboard"] = view.ResultCache(seconds=0)
    assert "1,500" in _table(client.get("/dashboard").get_data(as_text=True))


def test_the_cache_keeps_a_bounded_number_of_views_and_query_strings():
    cache = view.ResultCache(size=2)
    filters = service.Filters(1, *(2 * [service.dt.date(2026, 3, 2)]))
    known = service.Options([], [], [])
    entries = [view.Sums(service.Dashboard(filters), known) for _ in range(3)]
    for key, entry in zip("abc", entries, strict=True):
        cache.put(key, entry)
    assert cache.get("a") is None
    assert cache.get("b") is entries[1] and cache.get("c") is entries[2]
    fragment = view.Fragment(view.Markup("<p>x</p>"), chart=False)
    for n in range(view.PAGES_PER_VIEW + 1):
        entries[2].keep(("sort", str(n)), fragment)
    assert entries[2].page(("sort", "0")) is None
    assert entries[2].page(("sort", str(view.PAGES_PER_VIEW))) is fragment
