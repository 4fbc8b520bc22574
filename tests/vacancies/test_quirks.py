"""The feed edge against a fixture corpus reproducing every quirk in research/vacancies.md.

Mapping of quirks (research/vacancies.md sections 3 and 4) to tests in this package:

Section 3, real samples:
- Indeed XML: CDATA everywhere, URL CDATA wrapped in whitespace, RFC 822 `date`, an old
  `lastBuildDate` -> test_indeed_cdata_fields
- ZipRecruiter: two date syntaxes, postalcode preferred, HTML description -> test_ziprecruiter
- Jobrapido: dd/mm/yyyy dates, free-text "$50K per year", multi-valued jobtype, HTML in CDATA
  -> test_jobrapido
- Careerjet: "£30000 - 33000", two jobs share one URL, nested location -> test_careerjet,
  test_dedupe.py::test_same_url_different_titles_are_different_jobs
- Personio: one un-paged document, HTML in CDATA jobDescriptions -> test_personio
- Oxford XML: ISO opens/closes, escaped XHTML description, `&#163;` -> test_oxford_xml;
  Oxford RSS without dates/salary fields -> test_oxford_rss_dates_and_salary_from_text
- jobs.ac.uk RSS: employer + salary packed in the description, `<br />` literal or escaped,
  no location, no item date -> test_jobsacuk_description_packing
- Teaching Vacancies JSON-LD: `salary` key, School as hiring organisation -> test_teaching_vacancies
- JSON-LD in the wild: control characters, trailing `;`, CDATA wrappers, unescaped quotes,
  entity-escaped JSON, @graph/@id/list @type -> test_jsonld_in_the_wild
- Reed JSON: dd/mm/yyyy, truncated description, nullable salary -> test_reed_json
- Adzuna JSON: `__CLASS__` noise, predicted salaries, string id -> test_adzuna_json
- Multi-feed RSS (same item in two category feeds) -> test_dedupe.py::test_same_item_in_two_feeds

Section 4, quirk catalogue:
- CDATA/whitespace around URLs -> test_indeed_cdata_fields
- HTML in descriptions, raw or entity-encoded -> test_html_description_sanitised,
  test_jobsacuk_description_packing, test_oxford_xml
- Double-escaped text -> test_titles_decoded_exactly_once, test_indeed_cdata_fields
- RFC 822 / ISO 8601 / dd/mm/yyyy / named zones / impossible dates -> test_dates_feed,
  test_dates.py
- No item date -> test_dates_feed (dc:date), test_jobsacuk_description_packing (first seen)
- Closing date only in the description -> test_closing_date_in_text, test_dates.py
- Salary as free text -> test_salary.py, test_csv_export, test_jobsacuk_description_packing
- Relative links and xml:base -> test_relative_links, test_atom_xml_base
- Duplicated / unstable GUIDs -> test_dedupe.py (guid layers, fragments, host change,
  shared GUIDs, missing GUID)
- Same URL for different jobs -> test_dedupe.py::test_same_url_different_titles_are_different_jobs
- Non-UTF-8 encodings / wrong declarations -> test_windows_1252_rss,
  test_wrong_declaration_rss_is_a_warning, test_wrong_declarations_job_xml
- Enormous feeds -> test_fetch.py::test_oversize_body_refused (size cap),
  test_jobxml_streams_large_documents
- Feeds that silently lose items -> test_malformed_feed_refused_not_salvaged,
  test_dedupe.py::test_count_drop_warning
- (Re-polling cost) -> test_incremental.py, test_dedupe.py::test_unchanged_items_skip_normalisation
- Entity expansion / XXE -> test_hostile_xml_refused
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from campaign.vacancies.dates import timezone
from campaign.vacancies.detect import detect, parse_document
from campaign.vacancies.normalise import normalise, normalise_all
from campaign.vacancies.records import ParseResult, Vacancy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
LONDON = timezone("Europe/London")
NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
SOURCE = "https://src.example.org/feeds/main.xml"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def parse(name: str, *, source_url: str = SOURCE, content_type: str = "") -> ParseResult:
    return parse_document(
        (FIXTURES / name).read_bytes(), source_url=source_url, content_type=content_type
    )


def vacancies(name: str, *, source_url: str = SOURCE) -> list[Vacancy]:
    result = parse(name, source_url=source_url)
    assert result.error is None, result.error
    return normalise_all(result.items, tz=LONDON, now=NOW, source_url=source_url)


def test_indeed_cdata_fields() -> None:
    result = parse("indeed_cdata.xml")
    assert result.format == "jobxml"
    assert [(e.position, e.message) for e in result.errors] == [(3, "job 3 has no title")]
    first, second = normalise_all(result.items, tz=LONDON, now=NOW)
    assert first.external_id == "NGA-0042"
    assert first.title == "Graduate Data Analyst"
    assert first.url == "https://careers.northgate-analytics.example/jobs/0042?utm_source=indeed"
    assert first.keys.url == "https://careers.northgate-analytics.example/jobs/0042"
    assert first.employer == "Northgate Analytics Ltd"
    assert first.location == "Leeds, West Yorkshire, LS1 4AP, GB"
    assert first.posted_at == utc(2027, 3, 2, 9, 30)  # RFC 822 although docs say ISO
    # The structured expirationdate wins over the phrase in the text; end of day in London.
    assert first.closes_at == utc(2027, 4, 15, 22, 59, 59)
    assert (first.salary_min, first.salary_max) == (Decimal(27000), Decimal(31000))
    assert (first.salary_currency, first.salary_period) == ("GBP", "year")
    assert (
        first.description_html
        == "<p>Join our <b>insights</b> team.</p><p>Closing date: 30/04/2027</p>"
    )
    assert first.description_text == "Join our insights team.\nClosing date: 30/04/2027"
    assert first.tags == ("Data", "fulltime")
    assert second.title == "Research & Insight Intern"  # `&amp;` inside CDATA, decoded once
    assert second.posted_at == utc(2027, 3, 3, 10)
    assert (second.salary_min, second.salary_max, second.salary_period) == (
        Decimal("12.21"),
        Decimal("12.21"),
        "hour",
    )


def test_ziprecruiter() -> None:
    first, second = vacancies("ziprecruiter.xml")
    assert first.location == "BW1 2XY"  # only a postcode: the preferred field
    assert first.posted_at == utc(2027, 2, 1)  # ISO date, midnight in London (GMT in Feb)
    assert first.description_text == "Planning\nSurveys"
    assert (first.salary_min, first.salary_max, first.salary_period) == (
        None,
        Decimal(40000),
        "year",
    )
    assert second.posted_at == utc(2027, 2, 1, 8)  # RFC 822 with a numeric zone
    assert second.location == "Brightwater, Kent, BW1 2XY"
    assert second.salary_text == "Competitive"
    assert second.salary_min is None and "salary_missing" in second.flags


def test_jobrapido() -> None:
    (job,) = vacancies("jobrapido.xml")
    assert job.posted_at == utc(2027, 4, 2, 23)  # 03/04/2027 is 3 April, BST midnight
    assert job.closes_at is None
    assert job.warnings == ["closing date 31/02/2027 is impossible; no closing date set"]
    assert "invalid_date" in job.flags
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        Decimal(50000),
        Decimal(50000),
        "USD",
        "year",
    )
    assert job.tags == ("fulltime", "parttime")
    assert job.description_html == "<p>Work in our <strong>Cambridge</strong> lab.</p>"


def test_careerjet() -> None:
    first, second = vacancies("careerjet.xml")
    assert first.location == "Bristol, South West, UK"
    assert (first.salary_min, first.salary_max, first.salary_currency) == (
        Decimal(30000),
        Decimal(33000),
        "GBP",
    )
    assert first.url == second.url == "https://www.harbourlight.example/careers/"
    assert first.keys.url == second.keys.url == "https://harbourlight.example/careers"
    assert first.keys.title != second.keys.title


def test_personio() -> None:
    (job,) = vacancies("personio.xml")
    assert (job.external_id, job.title, job.employer, job.location) == (
        "880011",
        "Robotics Graduate Engineer",
        "Lumen Robotics GmbH",
        "Manchester",
    )
    assert job.description_html == (
        "<h3>Your mission</h3>\n<p>Build <em>robots</em>.</p>\n<h3>Your profile</h3>\n"
        "<ul><li>Curious</li></ul><p>Apply by 28 February 2027.</p>"
    )
    assert job.closes_at == utc(2027, 2, 28, 23, 59, 59)
    assert job.closing_phrase == "Apply by 28 February 2027"
    assert job.url == "" and job.warnings == ["item has no link"]
    # On a Personio jobs host the page URL is derived from the position id.
    (hosted,) = vacancies("personio.xml", source_url="https://lumen.jobs.personio.de/xml")
    assert hosted.url == "https://lumen.jobs.personio.de/job/880011"


def test_oxford_xml() -> None:
    (job,) = vacancies("oxford_vacancies.xml")
    assert job.posted_at == utc(2027, 3, 1, 9)
    assert job.closes_at == utc(2027, 3, 29, 11)
    assert job.salary_text == "Grade 6: £32,332 - £38,205 p.a."
    assert (job.salary_min, job.salary_max, job.salary_period) == (
        Decimal(32332),
        Decimal(38205),
        "year",
    )
    assert job.description_html == "<p>Fieldwork &amp; analysis.</p>"
    assert job.description_text == "Fieldwork & analysis."


def test_oxford_rss_dates_and_salary_from_text() -> None:
    (job,) = vacancies("oxford_vacancies.rss")
    assert job.posted_at == NOW  # no item date: first seen
    assert job.closes_at == utc(2027, 3, 29, 11)  # "12.00 midday", BST
    assert job.closing_phrase == (
        "closing date for applications is 12.00 midday on Monday 29 March 2027"
    )
    assert job.salary_text == "£32,332 - £38,205 p.a"
    assert (job.salary_min, job.salary_max) == (Decimal(32332), Decimal(38205))


def test_jobsacuk_description_packing() -> None:
    first, second = vacancies("jobsacuk.rss")
    assert first.employer == "University of Saltmarsh"
    assert first.salary_text == "£38,205 to £45,585"
    assert (first.salary_min, first.salary_max) == (Decimal(38205), Decimal(45585))
    assert first.location == ""
    assert first.posted_at == NOW
    assert first.description_text == (
        "University of Saltmarsh - School of Ocean Sciences\nSalary: £38,205 to £45,585"
    )
    assert second.employer == "Westmoor College"  # <br /> raw inside CDATA
    assert second.salary_text == "Not specified"
    assert "salary_missing" in second.flags


def test_teaching_vacancies() -> None:
    result = parse("teaching_vacancy.html", source_url="https://teaching.example.gov.uk/jobs/1")
    assert result.format == "jsonld"
    (job,) = normalise_all(result.items, tz=LONDON, now=NOW)
    assert job.employer == "Rivermouth Academy"
    assert job.salary_text == "MPS/UPS" and job.salary_min is None
    assert job.url == "https://teaching.example.gov.uk/jobs/teacher-of-mathematics"
    assert job.location == "Rivermouth, Devon, RM1 1AA, GB"
    assert job.closes_at == utc(2027, 3, 1, 23, 59, 59)
    assert job.description_html == "<p>Inspire our pupils.</p>"
    assert job.tags == ("FULL_TIME",)


def test_jsonld_in_the_wild() -> None:
    result = parse("jsonld_wild.html")
    assert [e.position for e in result.errors] == [1, 5]  # truncated block, unescaped quotes
    assert result.errors[0].message.startswith("JSON-LD block 1 is not valid JSON")
    civil, site, estimator = normalise_all(result.items, tz=LONDON, now=NOW)
    assert civil.external_id == "OE-2027-01"
    assert civil.employer == "Oakridge Engineering plc"  # @id reference into @graph
    assert civil.url == "https://careers.oakridge.example/vacancies/civil-2027"  # <base href>
    assert civil.location == "Bristol; Bath, UK"
    assert civil.description_html == "<p>Design bridges.</p>"  # control character dropped
    assert (civil.salary_min, civil.salary_max, civil.salary_currency, civil.salary_period) == (
        Decimal(29000),
        Decimal(32000),
        "GBP",
        "year",
    )
    assert civil.closes_at == utc(2027, 2, 28, 23, 59, 59)
    assert site.title == "Site Assistant" and site.location == "Remote"  # trailing `;`
    assert site.salary_min == site.salary_max == Decimal("11.44")
    assert estimator.title == "Trainee Estimator"  # whole block entity-escaped
    assert estimator.url == "https://careers.oakridge.example/vacancies/estimator"
    assert (estimator.salary_min, estimator.salary_max) == (Decimal(24000), Decimal(26000))


def test_reed_json() -> None:
    result = parse("reed.json")
    assert [(e.position, e.message) for e in result.errors] == [(3, "item 3 is not an object")]
    first, second = normalise_all(result.items, tz=LONDON, now=NOW)
    assert first.external_id == "41000001"
    assert first.posted_at == utc(2027, 3, 31, 23)  # 01/04/2027, BST
    assert first.closes_at == utc(2027, 5, 12, 22, 59, 59)
    assert (first.salary_min, first.salary_max, first.salary_currency) == (
        Decimal(26000),
        Decimal(29000),
        "GBP",
    )
    assert first.description_text == "Join our graduate scheme and learn how goods move..."
    assert second.salary_min is None and "salary_missing" in second.flags  # null, not 0
    assert second.warnings == ["closing date 30/02/2027 is impossible; no closing date set"]


def test_adzuna_json() -> None:
    first, second = vacancies("adzuna.json")
    assert first.external_id == "4100123456"
    assert first.title == "Junior Developer"
    assert first.employer == "Pixelforge Studios"
    assert first.location == "Sheffield, South Yorkshire"
    assert first.salary_min is None  # a predicted figure is not the employer's salary
    assert {"salary_predicted", "salary_missing"} <= first.flags
    assert first.keys.url == "https://adzuna.example/land/ad/4100123456?se=abc"
    assert (second.salary_min, second.salary_max) == (Decimal(24000), Decimal(26000))
    assert "salary_predicted" not in second.flags


def test_html_description_sanitised() -> None:
    first, second = vacancies("html_description.rss")
    assert first.description_html == (
        "<p>Guide <b>visitors</b>.</p>"
        '<a rel="nofollow noopener noreferrer">x</a> '
        '<a href="https://museum.example/about" rel="nofollow noopener noreferrer">About us</a>'
    )
    assert first.description_text == "Guide visitors.\nx About us"
    assert second.description_text == "Weekends\n£11.00 per hour"


def test_titles_decoded_exactly_once() -> None:
    titles = [v.title for v in vacancies("double_escaped.rss")]
    assert titles == [
        "Finance & Operations Trainee",  # &amp;amp; in XML
        "Sales & Marketing Graduate",  # &amp; inside CDATA
        "R&D Scientist (Chemistry)",  # plain &amp;, whitespace collapsed
        "Tom &amp; Jerry Animator",  # &amp;amp;amp;: decoded once, not twice
    ]


def test_dates_feed() -> None:
    bst, iso, impossible, dc_date, unreadable = vacancies("dates.rss")
    assert bst.posted_at == utc(2025, 4, 1, 9)  # feedparser would say 10:00 UTC
    assert bst.closes_at == utc(2027, 4, 3, 22, 59, 59)  # 3 April, end of day BST
    assert iso.posted_at == utc(2027, 1, 15, 13, 30)
    assert iso.closes_at == utc(2027, 2, 1, 17)
    assert impossible.posted_at == utc(2025, 3, 6)  # 06/03/2025 is 6 March
    assert impossible.closes_at is None  # not rolled over, not taken from the text either
    assert impossible.warnings == ["closing date 31/02/2027 is impossible; no closing date set"]
    assert dc_date.posted_at == utc(2027, 1, 10, 8)
    assert unreadable.posted_at == NOW
    assert unreadable.warnings == [
        "posted date 'sometime soon' was not recognised; no posted date set"
    ]


def test_closing_date_in_text() -> None:
    events, library, coach, porter, gardener = vacancies("closing_in_text.rss")
    assert events.closes_at == utc(2027, 5, 14, 16)
    assert events.closing_phrase == "Closing date: 5pm on 14 May 2027"
    assert library.closes_at == utc(2027, 6, 3, 22, 59, 59)
    assert library.closing_phrase == "Deadline: 03/06/2027"
    assert coach.closes_at == utc(2027, 7, 1, 11)
    assert porter.closes_at == utc(2027, 6, 30, 22, 59, 59)
    assert porter.closing_phrase == "closes on 30 June 2027"
    assert gardener.closes_at is None and gardener.closing_phrase == ""


def test_closing_date_in_another_timezone() -> None:
    (item,) = [i for i in parse("closing_in_text.rss").items if i.link.endswith("c2")]
    job = normalise(item, tz=timezone("America/Chicago"), now=NOW)
    assert job.closes_at == utc(2027, 6, 4, 4, 59, 59)  # end of 3 June, CDT


def test_relative_links() -> None:
    archivist, conservator, bad = vacancies("relative_links.rss")
    assert archivist.url == "https://src.example.org/vacancies/1002"
    assert archivist.description_html == (
        '<a href="https://src.example.org/apply/1002" rel="nofollow noopener noreferrer">Apply</a>'
    )
    assert conservator.url == "https://other.example.net/base/jobs/1003"  # item xml:base
    assert bad.url == "" and "invalid_url" in bad.flags
    assert bad.warnings == ["link 'javascript:alert(1)' is not an http(s) URL"]


def test_relative_links_without_xml_base_resolve_against_the_source() -> None:
    """Without xml:base feedparser is not given the source URL (tracking a base costs a URL
    join per element); the normaliser resolves against it instead, with the same result as
    feedparser resolving (forced here by an xml:base equal to the source URL)."""
    item = (
        "<item><title>Archive Assistant</title><link>../vacancies/7?utm_source=rss#top</link>"
        '<guid isPermaLink="false">aa-7</guid><description>&lt;p&gt;Greyfriars Library - '
        'Archives&lt;br/&gt;&lt;a href="/apply/7"&gt;Apply&lt;/a&gt;&lt;/p&gt;</description>'
        "</item>"
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel{}><title>t</title>'
    tail = "<link>https://src.example.org/</link><description>d</description>{}</channel></rss>"
    plain = (head.format("") + tail.format(item)).encode()
    based = (head.format(f' xml:base="{SOURCE}"') + tail.format(item)).encode()
    found = []
    for body in (plain, based):
        result = parse_document(body, source_url=SOURCE)
        assert result.error is None, result.error
        (job,) = normalise_all(result.items, tz=LONDON, now=NOW, source_url=SOURCE)
        found.append(job)
    plain_job, based_job = found
    assert plain_job.url == "https://src.example.org/vacancies/7?utm_source=rss#top"
    assert plain_job.keys.url == "https://src.example.org/vacancies/7"
    assert plain_job.description_html == (
        "<p>Greyfriars Library - Archives<br>"
        '<a href="https://src.example.org/apply/7" rel="nofollow noopener noreferrer">Apply</a></p>'
    )
    assert (plain_job.url, plain_job.keys, plain_job.description_html) == (
        based_job.url,
        based_job.keys,
        based_job.description_html,
    )


def test_atom_xml_base() -> None:
    (job,) = vacancies("atom_base.atom")
    assert job.url == "https://careers.quayside.example/roles/vol-coord"
    assert job.title == "Volunteer Coordinator & Trainer"
    assert job.employer == "Quayside Trust"
    assert job.location == "Hull"
    assert job.salary_text == "Voluntary (expenses only)"
    assert job.flags == frozenset({"unpaid"})
    assert job.posted_at == utc(2027, 2, 1, 12)


def test_windows_1252_rss() -> None:
    result = parse("windows1252.rss")
    assert result.warnings == []
    (job,) = normalise_all(result.items, tz=LONDON, now=NOW)
    assert job.title == "Café Supervisor – “Barista” lead"
    assert (job.salary_min, job.salary_max) == (Decimal(21000), Decimal(23000))


def test_wrong_declaration_rss_is_a_warning() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://e.example/</link><description>d</description><item>"
        "<title>Café – Manager</title><link>https://e.example/1</link></item></channel></rss>"
    ).encode("cp1252")
    result = parse_document(body)
    assert result.error is None
    assert result.warnings == ["encoding: document declared as utf-8, but parsed as windows-1252"]
    assert result.items[0].title == "Café – Manager"


def test_wrong_declarations_job_xml() -> None:
    wrong = parse("wrong_declaration_job.xml")
    assert wrong.warnings == ["the document declares utf-8 but is not; read as windows-1252"]
    assert wrong.items[0].title == "Crèche Assistant – Nursery"
    latin = parse("latin1_declared_utf8_job.xml")
    assert latin.warnings == ["the document declares iso-8859-1 but is UTF-8; read as UTF-8"]
    (job,) = normalise_all(latin.items, tz=LONDON, now=NOW)
    assert (job.title, job.employer, job.salary_min) == (
        "Café Manager",
        "Bean & Leaf",
        Decimal(26000),
    )


def test_csv_export() -> None:
    result = parse("export.csv", content_type="text/csv")
    assert result.format == "csv"
    assert [(e.position, e.message) for e in result.errors] == [
        (5, "line 5: link 'javascript:alert(1)' is not an http(s) URL"),
        (6, "line 6: no title"),
    ]
    surveyor, intern, sales = normalise_all(result.items, tz=LONDON, now=NOW)
    assert surveyor.external_id == "007"  # leading zeros kept
    assert surveyor.title == "Graduate Surveyor"
    assert surveyor.description_text == "Line one\nLine two"  # quoted multi-line cell
    assert (surveyor.salary_min, surveyor.salary_max) == (Decimal(25000), Decimal(28000))
    assert surveyor.closes_at == utc(2027, 5, 14, 22, 59, 59)
    assert intern.flags == frozenset({"unpaid"})
    assert "commission" in sales.flags and sales.salary_min is None
    assert sales.warnings == ["closing date 31/02/2027 is impossible; no closing date set"]


def test_malformed_feed_refused_not_salvaged() -> None:
    result = parse("malformed.rss")
    assert result.items == []
    assert result.error is not None
    assert result.error.startswith("the feed is not well-formed XML:")
    assert "line 9" in result.error


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("billion_laughs.rss", "refused: the document declares XML entities"),
        ("xxe.rss", "refused: the document declares XML entities"),
        ("billion_laughs_job.xml", "refused: the document has a DTD"),
        ("xxe_job.xml", "refused: the document has a DTD"),
        ("doctype_job.xml", "refused: the document has a DTD"),
    ],
)
def test_hostile_xml_refused(name: str, message: str) -> None:
    result = parse(name)
    assert result.items == []
    assert result.error is not None and result.error.startswith(message)


def test_jobxml_entities_refused_without_doctype_check() -> None:
    from campaign.vacancies.jobxml import parse_jobxml

    body = (FIXTURES / "billion_laughs_job.xml").read_bytes()
    assert parse_jobxml(body).error is not None
    assert "lol" not in repr(parse_jobxml(body).items)


def test_jobxml_streams_large_documents() -> None:
    jobs = "".join(
        f"<job><title>Role {n}</title><url>https://jobs.example.org/{n}</url></job>"
        for n in range(5000)
    )
    result = parse_document(f"<source>{jobs}</source>".encode())
    assert len(result.items) == 5000
    assert result.items[-1].title == "Role 4999"


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b'<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>', "", "rss"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>', "", "rss"),
        (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', "", "rss"),
        (b"<?xml version='1.0'?><!-- c --><source><job/></source>", "application/xml", "jobxml"),
        (b"<feed><postings><posting/></postings></feed>", "", "jobxml"),
        (b"\xef\xbb\xbf<workzag-jobs/>", "", "jobxml"),
        (b"<!DOCTYPE html><html></html>", "text/html", "jsonld"),
        (b'{"results": []}', "application/json", "json"),
        (b"title,url\r\nA,https://e.org/", "text/csv", "csv"),
        (b"\x00\x01binary", "application/octet-stream", ""),
    ],
)
def test_detect(body: bytes, content_type: str, kind: str) -> None:
    assert detect(body, content_type) == kind


def test_unrecognised_and_empty_documents() -> None:
    assert parse_document(b"").error == "the document is empty"
    error = parse_document(b"\x00\x01binary", content_type="image/png").error
    assert error == "unrecognised document (image/png): not RSS/Atom, job XML, HTML, JSON or CSV"
    assert parse_document(b'{"nothing": 1}').error == (
        "no list of jobs found (expected results, jobs or items)"
    )
    assert parse_document(b"<rss><channel><item>").error is not None


def test_xing_postings() -> None:
    body = (
        b"<feed><postings><posting><id>X1</id><job_title>Trainee Consultant</job_title>"
        b"<url>https://jobs.example.de/x1</url><company_name>Nordlicht Beratung</company_name>"
        b"<city>Hamburg</city></posting></postings></feed>"
    )
    (job,) = parse_document(body).items
    assert (job.guid, job.title, job.employer, job.location) == (
        "X1",
        "Trainee Consultant",
        "Nordlicht Beratung",
        "Hamburg",
    )
