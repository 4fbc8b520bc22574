import re

import pytest
from playwright.sync_api import expect

from campaign.services.demo import DEMO_LOGINS, DemoLogin

pytestmark = pytest.mark.browser
STAFF = next(login for login in DEMO_LOGINS if login.role == "staff")


def sign_in(page, base, login, succeeds=True):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    if succeeds:
        page.wait_for_url(f"{base}/")


def test_demo_staff_signs_in_reaches_the_dashboard_and_signs_out(page, live_server):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, STAFF)
    expect(page).to_have_url(f"{live_server}/")
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Plan")
    ).to_be_visible()
    # Staff do not see Settings.
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    # htmx came from our own static files, under the CSP, with no console errors.
    assert page.evaluate("typeof window.htmx") == "object"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{live_server}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert errors == []


def test_wrong_password_shows_a_generic_message(page, live_server):
    sign_in(page, live_server, DemoLogin(STAFF.email, "wrong-password", STAFF.role), succeeds=False)
    expect(
        page.get_by_text("That email and password do not match an active account.")
    ).to_be_visible()


def test_dashboard_fits_a_phone_screen(browser, live_server, tmp_path):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    sign_in(page, live_server, STAFF)
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"
    context.close()


def test_calculator_compares_typed_in_framings(page, live_server):
    sign_in(page, live_server, STAFF)
    page.get_by_role("link", name="Reports").click()
    page.get_by_role("link", name="Experiment calculator").click()
    page.get_by_label("Name of framing 1").fill("bare link")
    page.get_by_label("Views of framing 1").fill("40000")
    page.get_by_label("Clicks on framing 1").fill("1200")
    page.get_by_role("button", name="Add a framing").click()
    expect(page.get_by_label("Name of framing 3")).to_be_visible()
    expect(page.get_by_label("Name of framing 1")).to_have_value("bare link")
    page.get_by_label("Name of framing 2").fill("context")
    page.get_by_label("Views of framing 2").fill("40000")
    page.get_by_label("Clicks on framing 2").fill("1800")
    page.get_by_label("Name of framing 3").fill("question")
    page.get_by_label("Views of framing 3").fill("40000")
    page.get_by_label("Clicks on framing 3").fill("1190")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name="A framing did better")).to_be_visible()
    against = page.get_by_role("table", name="Against the control")
    expect(against.get_by_role("row", name=re.compile("^context"))).to_contain_text("better")
    expect(against.get_by_role("row", name=re.compile("^question"))).not_to_contain_text("better")
