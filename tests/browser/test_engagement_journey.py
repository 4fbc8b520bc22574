"""Engagement in Chromium: a manager opens a published demo post and sees its clicks per day
(chart and table) and the network's figures; following its tracked link counts one click."""

import re

import pytest
from playwright.sync_api import expect

from campaign.services.demo import DEMO_LOGINS
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser
MANAGER = next(login for login in DEMO_LOGINS if login.role == "manager")
# A person's browser (headless Chromium says so in its user agent, and is counted as a bot).
PERSON = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _clicks(page):
    said = page.locator("#engagement-h ~ p", has_text="tracked-link click").first.inner_text()
    return int(re.search(r"(\d+) tracked-link clicks?", said).group(1))


def test_a_published_post_shows_its_engagement_and_a_click_on_its_link_counts(page, live_server):
    sign_in(page, live_server, MANAGER)
    page.goto(f"{live_server}/posts?view=published")
    page.locator("main table a").first.click()
    page.get_by_role("link", name=re.compile("The whole post")).click()
    expect(page.get_by_role("heading", name="Engagement")).to_be_visible()
    # The chart is drawn by the locally served Chart.js, and its figures are also a table.
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    expect(page.get_by_role("table").filter(has_text="Clicks per day")).to_be_visible()
    expect(page.get_by_role("cell", name="the network").first).to_be_visible()
    assert serious_violations(page) == []

    before = _clicks(page)
    short = page.locator("#engagement-h ~ p code").first.inner_text()
    code = short.rsplit("/l/", 1)[1]
    followed = page.request.get(
        f"{live_server}/l/{code}", max_redirects=0, headers={"User-Agent": PERSON}
    )
    assert followed.status == 302
    assert followed.headers["location"].startswith("https://www.example.ac.uk/")
    assert "utm_medium=social" in followed.headers["location"]
    assert "set-cookie" not in followed.headers
    # A link-preview fetcher is not a click.
    preview = page.request.get(
        f"{live_server}/l/{code}", max_redirects=0, headers={"User-Agent": "Twitterbot/1.0"}
    )
    assert preview.status == 302
    page.reload()
    assert _clicks(page) == before + 1
