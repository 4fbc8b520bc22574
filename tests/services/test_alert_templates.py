"""Alert templates: the sandbox refuses escapes, unknown fields are named, channels' lengths."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from campaign.services import alert_templates as t
from campaign.services.text_rules import ChannelLimits

NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
FIELDS = t.vacancy_fields(t.sample(NOW), "Europe/London", NOW, "Example feed")


def test_the_documented_fields_render():
    body = (
        "{{ title }} at {{ employer }}, {{ location }}. {{ salary }} "
        "({{ salary_min|money }}–{{ salary_max|money }} a {{ salary_period }}). "
        "Closes {{ closes_on }}, in {{ closes_in_days }} days. {{ tags|join(', ') }}. "
        "From {{ source }}: {{ url }}"
    )
    assert t.check_template(body) == []
    assert t.render(body, FIELDS) == (
        "Graduate Data Analyst at Northwind Analytics, Leeds (hybrid). £27,000 - £31,000 pa "
        "(27,000–31,000 a year). Closes Sat 12 Dec, in 9 days. graduate, data. "
        "From Example feed: https://jobs.example.org/vacancies/1042"
    )
    assert set(FIELDS) == set(t.FIELDS)


def test_closing_date_is_read_in_the_organisations_zone():
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): the London date is shown.
    vacancy = t.SampleVacancy(closes_at=dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC))
    now = dt.datetime(2026, 6, 29, 12, 0, tzinfo=dt.UTC)
    fields = t.vacancy_fields(vacancy, "Europe/London", now)
    assert fields["closes_on"] == "Wed 1 Jul"
    assert fields["closes_in_days"] == 2
    assert t.vacancy_fields(vacancy, "UTC", now)["closes_on"] == "Tue 30 Jun"


def test_missing_values_render_empty_not_none():
    vacancy = t.SampleVacancy(salary_text="", salary_min=None, salary_max=None, closes_at=None)
    fields = t.vacancy_fields(vacancy, "Europe/London", NOW)
    assert t.render("[{{ salary_min }}|{{ closes_on }}|{{ salary }}]", fields) == "[||]"
    body = "{% if closes_on %}Closes {{ closes_on }}{% else %}No closing date{% endif %}"
    assert t.render(body, fields) == "No closing date"


def test_whole_and_fractional_salaries():
    vacancy = t.SampleVacancy(salary_min=Decimal("12.21"), salary_max=Decimal("12.50"))
    fields = t.vacancy_fields(vacancy, "UTC", NOW)
    assert t.render("£{{ salary_min|money }}-£{{ salary_max|money }}", fields) == "£12.21-£12.50"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{ titel }}", "Line 1: unknown field “titel” (did you mean “title”?)."),
        ("Hello\n\n{{ employer }} {{ wage }}", "Line 3: unknown field “wage”."),
        ("{{ title.shoe_size }}", "Line 1: unknown field “shoe_size”."),
        ("{{ vacancies }}", "Line 1: “vacancies” is only there in digest templates."),
        ("{% for v in vacancies %}", "Line 1: Unexpected end of template."),
        ("{{ title }", "Line 1: unexpected '}'."),
        ("{{ title|center(99) }}", "Line 1: unknown filter “center”"),
        ("", "The template is empty."),
    ],
)
def test_save_time_problems_name_the_line(body, problem):
    problems = t.check_template(body)
    assert problems, body
    assert problems[0].startswith(problem)


def test_every_unknown_field_is_named_once():
    problems = t.check_template("{{ foo }}\n{{ bar }}\n{{ foo }}")
    assert problems == [
        "Line 1: unknown field “foo”.",
        "Line 2: unknown field “bar”.",
        "Line 3: unknown field “foo”.",
    ]


ESCAPES = [
    "{{ self }}",
    "{{ self.__init__ }}",
    "{{ title.__class__ }}",
    "{{ title.__class__.__mro__[1].__subclasses__() }}",
    "{{ title['__class__'] }}",
    "{{ cycler }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner }}",
    "{{ namespace }}",
    "{{ lipsum }}",
    "{{ range(10**9) }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ title.center(1000000000) }}",
    "{{ title.format(1) }}",
    "{{ title|attr('__class__') }}",
    "{{ config }}",
    "{{ request }}",
    "{% include 'base.html' %}",
    "{% extends 'base.html' %}",
    "{% import 'x' as y %}",
    "{% macro m() %}{{ m() }}{% endmacro %}",
    "{% for v in vacancies recursive %}{{ loop(v) }}{% endfor %}",
    "{{ loop }}",
    "{{ _ }}",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_sandbox_escapes_are_refused_at_save_time_and_at_render_time(body):
    assert t.check_template(body, digest=True), body
    with pytest.raises(t.TemplateRefused):
        t.render(body, {**FIELDS, **t.digest_fields([FIELDS])}, digest=True)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ title * 1000000000 }}", "repeating text"),
        ("{{ tags * 1000000000 }}", "repeating text"),
        ("{{ 2 ** 100000 }}", "powers above"),
        ("{{ 99999999 ** 64 }}", "powers of numbers above"),
        ("{{ '%999999999d' % 1 }}", "formatting of text"),
        ("{{ closes_in_days // 0 }}", "division"),
        ("{{ title + closes_in_days }}", "could not be rendered"),
    ],
)
def test_runtime_abuse_becomes_a_refusal_with_the_reason(body, reason):
    assert t.check_template(body) == []  # only rendering can tell
    with pytest.raises(t.TemplateRefused, match=reason):
        t.render(body, FIELDS)


def test_output_is_capped():
    body = "{% for a in title %}{% for b in title %}{{ employer }}{% endfor %}{% endfor %}"
    with pytest.raises(t.TemplateRefused, match="longer than"):
        t.render(body, {**FIELDS, "title": "x" * 200})


def test_three_nested_loops_are_refused():
    body = (
        "{% for v in vacancies %}{% for a in v.tags %}{% for b in v.tags %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    assert "at most 2 nested loops" in t.check_template(body, digest=True)[0]


def test_digest_templates_loop_over_vacancies():
    body = (
        "{{ count }} new vacancies:\n"
        "{% for v in vacancies %}{{ loop.index }}. {{ v.title|truncate(12) }} – {{ v.url }}\n"
        "{% endfor %}"
    )
    assert t.check_template(body, digest=True) == []
    items = [FIELDS, {**FIELDS, "title": "Marketing Intern", "url": "https://x.example/2"}]
    assert t.render(body, {**FIELDS, **t.digest_fields(items)}, digest=True) == (
        "2 new vacancies:\n1. Graduate… – https://jobs.example.org/vacancies/1042\n"
        "2. Marketing… – https://x.example/2"
    )


def test_the_output_is_plain_text_not_html_escaped():
    fields = {**FIELDS, "employer": "Smith & Jones <Ltd>"}
    assert t.render("{{ employer }}", fields) == "Smith & Jones <Ltd>"


def test_length_is_checked_against_each_channel():
    text = "x" * 290
    channels = [
        ("X", ChannelLimits("x")),
        ("Bluesky", ChannelLimits("bluesky")),
        ("Mastodon", ChannelLimits("mastodon", max_characters=500)),
    ]
    problems = t.length_problems(text, channels)
    assert len(problems) == 1
    assert problems[0].startswith("X: ")
    assert t.length_problems("x" * 301, channels[1:2])[0].startswith("Bluesky: ")


def test_preview_shows_each_channels_count_with_the_sample_vacancy():
    channels = [("X", ChannelLimits("x")), ("Outbox", ChannelLimits("outbox"))]
    shown = t.preview("{{ title }} {{ url }}", channels, "Europe/London", NOW)
    assert shown.problems == []
    assert shown.text == "Graduate Data Analyst https://jobs.example.org/vacancies/1042"
    x_check = dict(shown.checks)["X"]
    assert x_check.length == len("Graduate Data Analyst ") + 23  # X counts a link as 23
    assert x_check.ok


def test_preview_of_a_broken_template_gives_the_reason():
    shown = t.preview("{{ shoe_size }}", [], "Europe/London", NOW)
    assert shown.text == ""
    assert shown.problems == ["Line 1: unknown field “shoe_size”."]


def test_digest_preview_uses_three_sample_vacancies():
    body = "{% for v in vacancies %}{{ v.title }}; {% endfor %}"
    shown = t.preview(body, [], "Europe/London", NOW, digest=True)
    assert shown.text == "Graduate Data Analyst; Marketing Intern; Junior Developer;"
