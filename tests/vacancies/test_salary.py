"""Salary text: numbers only when unambiguous, the flags otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign.vacancies.salary import Salary, parse_salary

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Up to £40k", Salary(None, D(40000), "GBP", "year")),
        ("£27,000 - £31,000 pa", Salary(D(27000), D(31000), "GBP", "year")),
        ("£12.21 per hour", Salary(D("12.21"), D("12.21"), "GBP", "hour")),
        ("£25k-£28k", Salary(D(25000), D(28000), "GBP", "year")),
        ("£20-25k", Salary(D(20000), D(25000), "GBP", "year")),
        ("£30000 - 33000", Salary(D(30000), D(33000), "GBP", "year")),
        ("Grade 6: £32,332 - £38,205 pa pro rata", Salary(D(32332), D(38205), "GBP", "year")),
        ("$50K per year", Salary(D(50000), D(50000), "USD", "year")),
        ("GBP 30000 per annum", Salary(D(30000), D(30000), "GBP", "year")),
        ("From £9.50 per hour", Salary(D("9.50"), None, "GBP", "hour")),
        ("£9.50ph", Salary(D("9.50"), D("9.50"), "GBP", "hour")),
        ("£350 per week", Salary(D(350), D(350), "GBP", "week")),
        ("£1,500 pcm", Salary(D(1500), D(1500), "GBP", "month")),
        ("£120 per day", Salary(D(120), D(120), "GBP", "day")),
        ("37.5 hours per week, £24,000", Salary(D(24000), D(24000), "GBP", "year")),
        (
            "£22,000 + commission",
            Salary(D(22000), D(22000), "GBP", "year", frozenset({"commission"})),
        ),
        ("€38,000 to €42,000", Salary(D(38000), D(42000), "EUR", "year")),
    ],
)
def test_unambiguous(text: str, expected: Salary) -> None:
    assert parse_salary(text) == expected


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("", {"salary_missing"}),
        ("Competitive", {"salary_missing"}),
        ("DOE", {"salary_missing"}),
        ("Negotiable depending on experience", {"salary_missing"}),
        ("Expenses only", {"unpaid"}),
        ("Voluntary", {"unpaid"}),
        ("Unpaid internship", {"unpaid"}),
        ("OTE £40,000", {"commission"}),
        ("£20,000 basic, OTE £35k", {"commission"}),
        ("Commission only", {"commission", "salary_missing"}),
        ("£20,000 or £25,000", {"salary_ambiguous"}),
        ("€45.000", {"salary_ambiguous"}),
        ("£30,000 - $40,000", {"salary_ambiguous"}),
        ("£40,000 - £30,000", {"salary_ambiguous"}),
    ],
)
def test_no_numbers(text: str, flags: set[str]) -> None:
    parsed = parse_salary(text)
    assert (parsed.minimum, parsed.maximum) == (None, None)
    assert parsed.flags == frozenset(flags)


@given(st.integers(10_000, 200_000), st.integers(0, 50_000))
def test_range_round_trip(low: int, extra: int) -> None:
    parsed = parse_salary(f"£{low:,} - £{low + extra:,} per annum")
    assert (parsed.minimum, parsed.maximum, parsed.currency, parsed.period) == (
        D(low),
        D(low + extra),
        "GBP",
        "year",
    )


@given(st.integers(5, 99), st.integers(0, 99))
def test_hourly_round_trip(pounds: int, pence: int) -> None:
    parsed = parse_salary(f"£{pounds}.{pence:02d} per hour")
    assert parsed.minimum == parsed.maximum == D(f"{pounds}.{pence:02d}")
    assert parsed.period == "hour"


@given(st.text(max_size=80))
def test_never_raises_and_never_inverts(text: str) -> None:
    parsed = parse_salary(text)
    if parsed.minimum is not None and parsed.maximum is not None:
        assert parsed.minimum <= parsed.maximum
