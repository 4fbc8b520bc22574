"""Example vacancy feeds built into the app, for the demo and for trying the product out.

A source whose URL is `example:<name>` is read from here instead of the network, so the demo's
vacancy alerts work with no internet access. Each feed is built for the day it is read, like a
real employer's feed: its closing dates stay ahead of today, so the demo never goes stale. The
items are invented, and between them they carry the quirks real feeds have (entities, day-first
dates, a closing date written in the text, unpaid and commission-only roles, a role that has
already closed). `broken-feed.xml` is malformed on purpose, so the sources page has an error to
show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from email.utils import format_datetime
from html import escape

SCHEME = "example:"
_NS = "https://www.example.ac.uk/ns/vacancy"


def _rss(today: dt.date) -> bytes:
    def day(offset: int) -> dt.date:
        return today + dt.timedelta(days=offset)

    def posted(offset: int) -> str:
        moment = dt.datetime.combine(day(offset), dt.time(9, 15), dt.UTC)
        return format_datetime(moment)

    items = [
        ("GRAD-101", "Graduate Data Analyst", "Northgate Analytics", "Leeds",
         "£27,000 - £31,000 pa", day(12).isoformat(), -1,
         "Join a small team turning NHS open data into dashboards. Training in SQL and Python."),
        ("GRAD-102", "Marketing &amp;amp; Events Intern (Summer)", "Brightwell &amp; Partners",
         "Manchester", "£12.21 per hour", day(20).isoformat(), -2,
         "Ten weeks over the summer, supporting campus events and social media."),
        ("GRAD-103", "Trainee Solicitor (2027 intake)", "Harcourt Lane LLP", "Birmingham",
         "£32,000", day(3).isoformat(), -4,
         "Applications are reviewed as they arrive; apply early."),
        ("GRAD-104", "Volunteer Events Assistant", "Riverside Youth Trust", "Sheffield",
         "Expenses only", day(25).isoformat(), -1,
         "Help run weekend activity days for young people. Flexible hours."),
        ("GRAD-105", "Graduate Sales Executive", "Kestrel Office Supplies", "Bristol",
         "£24k basic, OTE £40k", day(18).isoformat(), -3,
         "Commission-led role with a structured graduate programme."),
        ("GRAD-106", "Junior Software Engineer", "Fenwick Digital", "Newcastle upon Tyne",
         "Up to £35k", "", -2,
         f"Work on accessible public-sector websites. Closing date: "
         f"{day(9).strftime('%d/%m/%Y')}."),
        ("GRAD-107", "Research Assistant (part time)", "Institute for Coastal Studies",
         "Aberystwyth", "", day(15).isoformat(), -5,
         "Support a survey of coastal erosion; 0.5 FTE for twelve months."),
        ("GRAD-108", "Graduate Accountant", "Moorcroft &amp; Hale", "York",
         "£26,500 pa", day(-1).isoformat(), -20,
         "This role has closed and must never be alerted."),
    ]  # fmt: skip
    rows = []
    for guid, title, employer, location, salary, closes, age, text in items:
        rows.append(
            f"""    <item>
      <guid isPermaLink="false">{guid}</guid>
      <title>{title}</title>
      <link>https://jobs.example.ac.uk/vacancy/{guid.lower()}</link>
      <pubDate>{posted(age)}</pubDate>
      <v:employer>{employer}</v:employer>
      <v:location>{location}</v:location>
      <v:salary>{salary}</v:salary>
      <v:closingdate>{closes}</v:closingdate>
      <description>&lt;p&gt;{escape(text)}&lt;/p&gt;</description>
    </item>"""
        )
    body = "\n".join(rows)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:v="{_NS}">
  <channel>
    <title>Example University job board: graduate roles</title>
    <link>https://jobs.example.ac.uk/</link>
    <description>Graduate roles and internships (example feed built into campaign)</description>
{body}
  </channel>
</rss>
""".encode()


def _job_xml(today: dt.date) -> bytes:
    jobs = [
        ("PL-2001", "Year in Industry: Civil Engineering Placement", "Ashby Bridges Ltd",
         "Nottingham", "£21,000 per annum", 30, 2),
        ("PL-2002", "Placement Student - HR", "Calder Foods plc", "Huddersfield",
         "£19,500 - £20,500", 6, 1),
        ("PL-2003", "Summer Research Placement (Chemistry)", "Larkspur Pharma", "Cambridge",
         "£450 per week", 14, 3),
    ]  # fmt: skip
    rows = []
    for ref, title, company, city, salary, closes_in, age in jobs:
        when = (today - dt.timedelta(days=age)).strftime("%a, %d %b %Y 10:00:00 GMT")
        closes = (today + dt.timedelta(days=closes_in)).strftime("%d/%m/%Y")
        rows.append(
            f"""  <job>
    <title><![CDATA[{title}]]></title>
    <date><![CDATA[{when}]]></date>
    <referencenumber><![CDATA[{ref}]]></referencenumber>
    <url><![CDATA[https://placements.example.ac.uk/jobs/{ref}]]></url>
    <company><![CDATA[{company}]]></company>
    <city><![CDATA[{city}]]></city>
    <country><![CDATA[GB]]></country>
    <salary><![CDATA[{salary}]]></salary>
    <expirationdate><![CDATA[{closes}]]></expirationdate>
    <description><![CDATA[<p>A placement year with mentoring and a project of your own.</p>]]>
    </description>
  </job>"""
        )
    body = "\n".join(rows)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<source>
  <publisher>Example placements board</publisher>
  <publisherurl>https://placements.example.ac.uk/</publisherurl>
{body}
</source>
""".encode()


def _job_page(today: dt.date) -> bytes:
    posting = {
        "@context": "https://schema.org",
        "@type": "JobPosting",
        "identifier": {"@type": "PropertyValue", "value": "EMP-77"},
        "title": "Graduate Environmental Consultant",
        "hiringOrganization": {"@type": "Organization", "name": "Greenway Consulting"},
        "jobLocation": {
            "@type": "Place",
            "address": {"@type": "PostalAddress", "addressLocality": "Glasgow"},
        },
        "datePosted": (today - dt.timedelta(days=2)).isoformat(),
        "validThrough": (today + dt.timedelta(days=21)).isoformat() + "T17:00:00+00:00",
        "baseSalary": {
            "@type": "MonetaryAmount",
            "currency": "GBP",
            "value": {
                "@type": "QuantitativeValue",
                "minValue": 26000,
                "maxValue": 28000,
                "unitText": "YEAR",
            },
        },
        "url": "https://careers.greenway.example.com/jobs/emp-77",
        "description": "<p>Site surveys and reports on biodiversity net gain.</p>",
    }
    return f"""<!doctype html>
<html lang="en"><head><title>Graduate Environmental Consultant</title>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "Organization",
  "name": "Greenway Consulting",}}</script>
<script type="application/ld+json">{json.dumps(posting)}</script>
</head><body><h1>Graduate Environmental Consultant</h1></body></html>
""".encode()


def _broken(_today: dt.date) -> bytes:
    return b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Half a feed</title>
<item><title>Graduate Planner</title><link>https://jobs.example.org/1</link>
<item><title>Unclosed item
"""


FEEDS: dict[str, tuple[str, Callable[[dt.date], bytes]]] = {
    "graduate-roles.rss": ("application/rss+xml", _rss),
    "placements.xml": ("application/xml", _job_xml),
    "employer-job-page.html": ("text/html", _job_page),
    "broken-feed.xml": ("application/xml", _broken),
}


def is_example(url: str) -> bool:
    return url.startswith(SCHEME)


def problem(url: str) -> str | None:
    """Why an `example:` URL names no built-in feed, or None."""
    name = url[len(SCHEME) :]
    if name in FEEDS:
        return None
    return f"there is no example feed called {name!r}; the app has " + ", ".join(
        SCHEME + known for known in FEEDS
    )


def body_of(url: str, today: dt.date) -> tuple[bytes, str]:
    """The feed's bytes and content type as they read on `today`."""
    content_type, build = FEEDS[url[len(SCHEME) :]]
    return build(today), content_type


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
