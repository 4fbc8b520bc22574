"""The planning journey in Chromium: draft two framings, queue them, submit, approve, calendar.

A staff member writes a message with two framings, schedules both into the queue of a channel
that needs approval and submits them; a manager approves both; both then appear on the
calendar at their queue slots, in the organisation's time zone.
"""

import datetime as dt
import re
import uuid

import pytest
from playwright.sync_api import expect

from campaign.services.demo import DEMO_LOGINS
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser
STAFF = next(login for login in DEMO_LOGINS if login.role == "staff")
MANAGER = next(login for login in DEMO_LOGINS if login.role == "manager")


def _framing(page, base, message_url, label, text, tag, another):
    page.goto(message_url)
    page.get_by_label("Name of this framing").fill(label)
    page.get_by_label("Text", exact=True).fill(text)
    # The check while typing comes back from the server through htmx.
    expect(page.locator("#checks")).to_contain_text("fits")
    page.get_by_label(tag, exact=True).check()
    button = "Save and write another framing" if another else "Save"
    page.get_by_role("button", name=button, exact=True).click()


def _schedule(page, label):
    page.get_by_role("link", name=re.compile(rf"Schedule this framing \({label}\)")).click()
    expect(page.get_by_role("heading", name="New post")).to_be_visible()
    page.get_by_label(re.compile(r"^Outbox: graduates")).check()
    page.get_by_label("Add to the queue: each channel's next free slot").check()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Can be published")
    expect(preview).to_contain_text("Ready")
    page.get_by_role("button", name="Save and submit for approval").click()
    expect(page.get_by_text("Waiting for a manager to approve it.")).to_be_visible()
    post_id = int(re.search(r"/posts/(\d+)$", page.url).group(1))
    stamp = page.locator("#deliveries-h ~ div time").first.get_attribute("datetime")
    return post_id, dt.datetime.fromisoformat(stamp)


def test_two_framings_are_queued_approved_and_shown_on_the_calendar(page, live_server):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tag = uuid.uuid4().hex[:6]
    sign_in(page, live_server, STAFF)

    page.goto(f"{live_server}/plan")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill(f"Journey {tag}")
    page.get_by_label("Goal").fill("Graduates book a call with an adviser")
    page.get_by_role("button", name="Create the campaign").click()
    page.get_by_role("link", name="New message").click()
    page.get_by_label("Title").fill("Graduate support")
    page.get_by_label("Link", exact=True).fill("https://www.example.ac.uk/careers/graduates")
    page.get_by_label("Why it matters now").fill("Support lasts three years after graduating")
    page.get_by_role("button", name="Save and write the first framing").click()
    message_url = page.url

    _framing(
        page, live_server, message_url, "Context",
        f"Graduated last summer? Our support lasts three years. {tag} "
        "https://www.example.ac.uk/careers/graduates", "Context", another=True,
    )  # fmt: skip
    _framing(
        page, live_server, message_url, "Question",
        f"Not sure what next after your degree? {tag} https://www.example.ac.uk/careers/graduates",
        "Question", another=False,
    )  # fmt: skip
    expect(page.get_by_text("Add at least two framings to compare them.")).to_have_count(0)
    campaign_url = page.url.split("#")[0]

    scheduled = []
    for label in ("Context", "Question"):
        page.goto(campaign_url)
        scheduled.append(_schedule(page, label))
    assert scheduled[0][1] != scheduled[1][1], "two posts took one queue slot"
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, MANAGER)
    page.goto(f"{live_server}/posts/drafts?view=pending")
    for post_id, _when in scheduled:
        page.locator(f'form[action="/posts/{post_id}/approve"] button').click()
        expect(page.get_by_text("Approved: the post is scheduled")).to_be_visible()
    for post_id, when in scheduled:
        page.goto(f"{live_server}/calendar?view=week&date={when.date().isoformat()}")
        entry = page.locator(f'a[href^="/posts/{post_id}"]')
        expect(entry).to_be_visible()
        expect(entry).to_contain_text(tag)
    page.goto(f"{live_server}/posts/{scheduled[0][0]}")
    expect(page.get_by_text("Approved", exact=False).first).to_be_visible()
    assert errors == []
