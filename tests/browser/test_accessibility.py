"""WCAG 2.2 AA: axe-core finds no serious or critical violation on any page."""

import json
from pathlib import Path

import pytest

from campaign.services.demo import DEMO_LOGINS
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
ADMIN = next(login for login in DEMO_LOGINS if login.role == "admin")
PAGES = [
    "/",
    "/plan",
    "/plan/campaigns/1",
    "/posts",
    "/posts?view=attention",
    "/posts?view=published",
    "/posts?view=manual",
    "/posts/deliveries/1",
    "/timeline",
    "/settings/channels",
    "/settings/channels/connect",
    "/settings/channels/connect/mastodon",
    "/settings/channels/connect/x",
    "/settings/channels/connect/bluesky",
    "/experiments",
    "/experiments/library",
    "/experiments/library?q=zzz",
    "/experiments/new",
    "/experiments/new?message_id=1",
    "/experiments/1",  # the demo's concluded, running and planned experiments
    "/experiments/2",
    "/experiments/3",
    "/vacancies",
    "/vacancies?status=all",
    "/vacancies/sources",
    "/vacancies/sources/new",
    "/reports",
    "/settings/",
    "/settings/users",
    "/settings/tokens",
    "/account",
    "/reports/calculator",
    "/reports/framing",
    "/experiments/1/report",
    "/settings/audit",
    "/posts/new",
    "/posts/new?variant_id=1",
    "/posts/1",
    "/posts/1/edit",
    "/posts/drafts",
    "/posts/drafts?view=pending",
    "/posts/import",
    "/engagement/import",
    "/plan/campaigns/new",
    "/plan/campaigns/1/edit",
    "/plan/campaigns/1/messages/new",
    "/plan/messages/1/edit",
    "/plan/messages/1/variants/new",
    "/plan/variants/1/edit",
    "/calendar",
    "/calendar?view=month",
    "/settings/calendar-feed",
    "/settings/key-dates",
    "/settings/queue",
    "/settings/key-dates/1/edit",
    "/settings/planning/",
    "/settings/links/",
    "/vacancies/alerts/",
    "/vacancies/alerts/new",
    "/no-such-page",
    "/dashboard",
    "/dashboard?group=week&trend=rate",
    "/dashboard?from=2026-13-01",
]


def serious_violations(page):
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_sign_in_page_has_no_serious_violations(page, live_server):
    page.goto(f"{live_server}/login")
    assert serious_violations(page) == []


@pytest.mark.parametrize("width", [1200, 375])
def test_every_page_has_no_serious_violations(page, live_server, width):
    assert AXE.exists(), "axe-core is installed by `npm ci` (make assets)"
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, live_server, ADMIN)
    page.wait_for_url(f"{live_server}/")
    found = {}
    for path in PAGES:
        page.goto(f"{live_server}{path}")
        violations = serious_violations(page)
        if violations:
            found[path] = violations
    assert found == {}, json.dumps(found, indent=1)


def test_calculator_results_have_no_serious_violations(page, live_server):
    sign_in(page, live_server, ADMIN)
    page.goto(f"{live_server}/reports/calculator")
    for i, (views, clicks) in enumerate([("3000", "30"), ("3100", "52")], start=1):
        page.get_by_label(f"Views of framing {i}").fill(views)
        page.get_by_label(f"Clicks on framing {i}").fill(clicks)
    page.get_by_role("button", name="Compare").click()
    page.get_by_role("heading", name="Not enough evidence yet").wait_for()
    assert serious_violations(page) == []


def test_the_checker_catches_a_real_violation(page, live_server):
    page.goto(f"{live_server}/login")
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')"
    )
    assert any(v["id"] == "label" for v in serious_violations(page))
