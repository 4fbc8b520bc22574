"""Experiments in Chromium: a manager opens the demo's concluded experiment and its report, and
sees the verdict, the chart (with its table) and what was learnt; the framing report and the
dashboard pass axe as well."""

import re

import pytest
from playwright.sync_api import expect

from campaign.services.demo import DEMO_LOGINS
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser
MANAGER = next(login for login in DEMO_LOGINS if login.role == "manager")


def test_a_manager_reads_a_concluded_experiments_verdict_chart_and_learning(page, live_server):
    sign_in(page, live_server, MANAGER)
    page.goto(f"{live_server}/experiments")
    page.get_by_role("link", name=re.compile("Exam season")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Exam season")
    page.get_by_role("link", name=re.compile("^The report")).click()

    verdict = page.locator("#verdict-h")
    expect(verdict).to_be_visible()
    assert verdict.inner_text().strip()
    expect(page.locator(".verdict .summary")).not_to_be_empty()
    # The chart is drawn by the locally served Chart.js; its numbers are also a table.
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    table = page.get_by_role("table").filter(has_text="Bare link")
    expect(table).to_be_visible()
    expect(table.get_by_role("rowheader", name=re.compile("Context"))).to_be_visible()
    learning = page.get_by_role("region", name="What we learnt")
    expect(learning).to_be_visible()
    expect(learning).to_contain_text("Decision")
    assert serious_violations(page) == []

    for path in ("/reports/framing", "/dashboard"):
        page.goto(f"{live_server}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert serious_violations(page) == [], path
