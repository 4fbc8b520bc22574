"""The engagement CSV reader and writer: every bad row named by line, the good rows kept."""

import csv
import datetime as dt
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign.services import engagement_csv
from campaign.services.csv_files import CsvFileError
from campaign.services.engagement_csv import FIGURES, parse, write


def lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_good_rows_by_post_id_and_external_id():
    parsed = parse(
        lines(
            "post_id,external_id,collected_at,impressions,clicks,likes",
            "12,,2026-11-02T10:00:00+00:00,1500,37,4",
            ',1861234567890123456,2026-11-02T11:00:00+01:00,"1,200",,9',
        )
    )
    assert parsed.problems == []
    first, second = parsed.rows
    assert (first.line, first.post_id, first.external_id) == (2, 12, None)
    assert first.collected_at == dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    assert first.figures == {"impressions": 1500, "clicks": 37, "likes": 4}
    assert (second.post_id, second.external_id) == (None, "1861234567890123456")
    # The offset is honoured; an empty figure is "not reported", never 0.
    assert second.collected_at == dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    assert second.figures == {"impressions": 1200, "clicks": None, "likes": 9}


def test_every_bad_row_is_named_by_line_and_the_good_ones_are_kept():
    parsed = parse(
        lines(
            "post_id,collected_at,clicks,impressions",
            "1,2026-11-02T10:00:00Z,5,100",
            "x1,2026-11-02T10:00:00Z,5,100",
            "2,2026-11-02 10:00,5,100",
            "3,2026-02-30T10:00:00+00:00,5,100",
            "",
            "4,2026-11-02T10:00:00+00:00,-3,1e3",
            ",2026-11-02T10:00:00+00:00,1,1",
            "5,,1,1",
            "6,2026-11-02T10:00:00+00:00,,",
            "7,2026-11-02T10:00:00+00:00,99999999999,1",
            "8,2026-11-02T10:00:00+00:00,2,20,extra",
        )
    )
    assert [row.post_id for row in parsed.rows] == [1]
    said = [str(p) for p in parsed.problems]
    assert said == [
        "line 3, post_id: “x1” is not a post number.",
        "line 4, collected_at: “2026-11-02 10:00” has no UTC offset; add one, like "
        "2026-03-01T09:30:00+00:00.",
        "line 5, collected_at: “2026-02-30T10:00:00+00:00” is not a date and time; write it "
        "like 2026-03-01T09:30:00+00:00.",
        "line 7, impressions: “1e3” is not a whole number of 0 or more.",
        "line 7, clicks: “-3” is not a whole number of 0 or more.",
        "line 8: needs a post_id or an external_id.",
        "line 9, collected_at: is empty; it is required.",
        "line 10: has no figures: every figure cell is empty.",
        "line 11, clicks: 99999999999 is too large to be a real figure.",
        "line 12: has 5 cells but the header names only 4 columns.",
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("post_id,collected_at,clicks,views", "Unknown column: “views”."),
        ("post_id,clicks", "Missing column: “collected_at”."),
        ("collected_at,clicks", "needs a “post_id” or an “external_id” column"),
        ("post_id,collected_at", "names no figure"),
        ("post_id,collected_at,clicks,clicks", "more than once: “clicks”"),
    ],
)
def test_a_bad_header_refuses_the_file_with_the_reason(header, message):
    with pytest.raises(CsvFileError) as caught:
        parse(lines(header, "1,2026-11-02T10:00:00Z,1"))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        ("post_id,collected_at,clicks\n".encode("utf-16"), "UTF-16"),
        (b"post_id,collected_at,clicks\n1,2026-11-02T10:00:00Z,\xe9\n", "not UTF-8"),
        (b'post_id,collected_at,clicks\n1,"2026-11-02T10:00:00Z,1\n', "not valid CSV"),
        (b"post_id,collected_at,clicks\n", "no rows of figures"),
    ],
)
def test_an_unusable_file_is_refused_with_the_reason(data, message):
    with pytest.raises(CsvFileError) as caught:
        parse(data)
    assert message in str(caught.value)


def test_a_windows_spreadsheet_file_with_a_byte_order_mark_and_crlf_reads():
    data = "\ufeffPost_ID,Collected_At,Clicks\r\n3,2026-11-02T10:00:00+00:00,4\r\n".encode()
    [row] = parse(data).rows
    assert (row.post_id, row.figures) == (3, {"clicks": 4})


def test_too_many_rows_or_bytes_are_refused():
    header = "post_id,collected_at,clicks"
    many = [f"{n},2026-11-02T10:00:00Z,1" for n in range(1, engagement_csv.MAX_ROWS + 2)]
    with pytest.raises(CsvFileError, match="more than 20,000 rows"):
        parse(lines(header, *many))
    with pytest.raises(CsvFileError, match="at most 5 MB"):
        parse(lines(header) + b" " * engagement_csv.MAX_BYTES)


def test_formula_cells_are_read_as_text_and_refused_as_figures():
    parsed = parse(
        lines(
            "external_id,collected_at,clicks",
            '"=HYPERLINK(""http://evil.example"",""x"")",2026-11-02T10:00:00Z,1',
            "ok-1,2026-11-02T10:00:00Z,=1+1",
        )
    )
    # A formula in an id is just an id that will match no post; in a figure it is refused.
    assert [row.external_id for row in parsed.rows] == ['=HYPERLINK("http://evil.example","x")']
    assert [str(p) for p in parsed.problems] == [
        "line 3, clicks: “=1+1” is not a whole number of 0 or more."
    ]


def test_export_neutralises_formula_cells_and_reads_back():
    text = write(
        [
            ["external_id", "collected_at", "clicks"],
            ["=HYPERLINK(1)", "2026-11-02T10:00:00+00:00", "3"],
            ["+44", "2026-11-02T10:00:00+00:00", "4"],
            ["-1", "2026-11-02T10:00:00+00:00", "5"],
            ["@SUM(A1)", "2026-11-02T10:00:00+00:00", "6"],
        ]
    )
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert cells == ["'=HYPERLINK(1)", "'+44", "'-1", "'@SUM(A1)"]
    assert [row.external_id for row in parse(text.encode()).rows] == [
        "=HYPERLINK(1)",
        "+44",
        "-1",
        "@SUM(A1)",
    ]


figures = st.dictionaries(st.sampled_from(FIGURES), st.integers(0, 2**31 - 1), min_size=1)


@given(
    post_id=st.integers(1, 2**31 - 1),
    values=figures,
    when=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=1))]),
    ),
)
def test_a_written_row_reads_back_the_same(post_id, values, when):
    names = sorted(values)
    text = write(
        [
            ["post_id", "collected_at", *names],
            [str(post_id), when.isoformat(), *(str(values[n]) for n in names)],
        ]
    )
    [row] = parse(text.encode()).rows
    assert (row.post_id, row.collected_at, row.figures) == (post_id, when, values)


def test_an_exports_extra_columns_are_ignored_and_its_tracked_link_rows_skipped():
    parsed = parse(
        lines(
            ",".join(engagement_csv.EXPORT_COLUMNS),
            "4,x-1,2026-11-02T10:00:00+00:00,,3,5,,,,,,,X,24h,csv,9",
            "4,x-1,2026-11-03T10:00:00+00:00,,40,,,,,,,12,X,,tracked link,9",
        )
    )
    assert parsed.problems == [] and parsed.skipped == [3]
    [row] = parsed.rows
    assert (row.line, row.post_id, row.figures["clicks"], row.figures["likes"]) == (2, 4, 3, 5)


def test_a_file_of_only_tracked_link_rows_reads_with_nothing_to_save():
    parsed = parse(
        lines("post_id,collected_at,clicks,source", "4,2026-11-03T10:00:00+00:00,40,Tracked link")
    )
    assert (parsed.rows, parsed.problems, parsed.skipped) == ([], [], [2])


def test_a_time_no_utc_instant_can_hold_is_refused_not_raised():
    parsed = parse(lines("post_id,collected_at,clicks", "1,9999-12-31T23:00:00-05:00,1"))
    assert [str(p) for p in parsed.problems] == [
        "line 2, collected_at: “9999-12-31T23:00:00-05:00” is out of range."
    ]
