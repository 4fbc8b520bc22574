"""Regenerate the README screenshots: `.venv/bin/python scripts/screenshots.py` (needs Chromium)."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from waitress.server import create_server

from campaign import create_app
from campaign.db import utcnow
from campaign.migrate import upgrade
from campaign.services.demo import DEMO_LOGINS, load_demo
from campaign.web.context import state

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/shots.sqlite3"
        upgrade(url)
        app = create_app({"app": {"instance_path": tmp}, "database": {"url": url},
                          "security": {"session_cookie_secure": False}})
        with state(app).session_factory.begin() as session:
            load_demo(session, state(app).hasher, utcnow())
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{server.effective_port}"
        admin = next(login for login in DEMO_LOGINS if login.role == "admin")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{base}/login")
            page.get_by_label("Email").fill(admin.email)
            page.get_by_label("Password").fill(admin.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/")
            page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
            page.goto(f"{base}/plan")
            page.get_by_role("link", name="Exam season: is it worth it?").click()
            page.screenshot(path=str(OUT / "campaign.png"), full_page=True)
            page.goto(f"{base}/reports/calculator")
            arms = [("bare link", "3000", "30"), ("context", "3100", "52")]
            for i, (name, views, clicks) in enumerate(arms, start=1):
                page.get_by_label(f"Name of framing {i}").fill(name)
                page.get_by_label(f"Views of framing {i}").fill(views)
                page.get_by_label(f"Clicks on framing {i}").fill(clicks)
            page.get_by_role("button", name="Compare").click()
            page.get_by_role("heading", name="Not enough evidence yet").wait_for()
            page.screenshot(path=str(OUT / "calculator.png"), full_page=True)
            page.goto(f"{base}/posts?view=manual")
            page.get_by_role("link", name="Graduates: our free careers support").first.click()
            page.screenshot(path=str(OUT / "delivery-manual.png"), full_page=True)
            page.goto(f"{base}/posts")
            page.screenshot(path=str(OUT / "posts.png"), full_page=True)
            page.goto(f"{base}/posts?view=published")
            page.locator("main table a").first.click()
            page.get_by_role("link", name="The whole post").click()
            page.wait_for_function(
                "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))"
            )
            section = page.locator("section:has(#engagement-h)")
            section.screenshot(path=str(OUT / "post-engagement.png"))
            page.goto(f"{base}/calendar?view=month")
            page.screenshot(path=str(OUT / "calendar.png"), full_page=True)
            page.goto(f"{base}/posts/new?variant_id=2")
            page.get_by_label("Outbox: students").check()
            page.locator("#preview table").wait_for()
            page.screenshot(path=str(OUT / "compose.png"), full_page=True)
            page.set_viewport_size({"width": 375, "height": 740})
            page.goto(f"{base}/")
            page.screenshot(path=str(OUT / "dashboard-phone.png"), full_page=True)
            browser.close()
        server.close()


if __name__ == "__main__":
    main()
