"""The engagement CSV (../shared/CONTRACT.md): reading a file into checked rows, and writing one.

Columns: `post_id` or `external_id`, `collected_at` (ISO 8601 with an offset), then any of the
figures. Reading checks each row on its own and reports every bad one by line number with the
reason; the good rows are returned so the caller can save them, or none, as the user chooses.
Nothing here touches the database: matching rows to deliveries is the caller's step.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from campaign.services import csv_files
from campaign.services.csv_files import CsvFileError

FIGURES = (
    "impressions",
    "clicks",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "profile_clicks",
)
IDENTIFIERS = ("post_id", "external_id")
COLUMNS = (*IDENTIFIERS, "collected_at", *FIGURES)
# Written by export, accepted and ignored by import, so an export can be imported again; a line
# whose `source` is TRACKED_SOURCE holds our own tracked-link clicks and is skipped on import.
EXPORT_ONLY = ("unique_clicks", "channel", "window", "source", "delivery_id")
EXPORT_COLUMNS = (*COLUMNS, *EXPORT_ONLY)
TRACKED_SOURCE = "tracked link"
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
# Larger than any post's figures; beyond it a cell is a mistake (or would overflow the column).
MAX_FIGURE = 2**31 - 1
_MAX_ID = 2**31 - 1
_INTEGER = re.compile(r"[0-9]{1,3}(,[0-9]{3})+|[0-9]+")


@dataclass(frozen=True)
class EngagementRow:
    """One good line: which post or platform post, when the figures were read, and the figures.

    A figure left empty is None (not reported), never 0.
    """

    line: int
    post_id: int | None
    external_id: str | None
    collected_at: dt.datetime
    figures: dict[str, int | None]


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class ParsedFile:
    rows: list[EngagementRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    # Lines of an export holding tracked-link clicks: not figures to import, so left out.
    skipped: list[int] = field(default_factory=list)


def parse(data: bytes) -> ParsedFile:
    """Every row of the file, checked; CsvFileError when the file itself is unusable."""
    csv_files.check_size(data, MAX_BYTES)
    records = csv_files.records(csv_files.decode(data), MAX_ROWS)
    at = csv_files.header_at(records)
    if at is None:
        raise CsvFileError(f"The file is empty. Its first line must be the header: {_listed()}.")
    names = csv_files.header_names(records[at])
    problems = csv_files.header_problems(names, EXPORT_COLUMNS, ("collected_at",), _listed())
    if not any(name in IDENTIFIERS for name in names):
        problems.append("The header needs a “post_id” or an “external_id” column.")
    if not any(name in FIGURES for name in names):
        problems.append(f"The header names no figure; add at least one of {', '.join(FIGURES)}.")
    if problems:
        raise CsvFileError(*problems)
    parsed = ParsedFile(columns=[n for n in names if n])
    for number, cells in enumerate(records[at + 1 :], start=at + 2):
        if not any(c.strip() for c in cells):
            continue
        if _tracked_line(names, cells):
            parsed.skipped.append(number)
            continue
        row, row_problems = _row(number, names, [csv_files.unescape(c) for c in cells])
        parsed.problems += row_problems
        if row is not None:
            parsed.rows.append(row)
    if not parsed.rows and not parsed.problems and not parsed.skipped:
        raise CsvFileError("The file has a header but no rows of figures.")
    return parsed


def _tracked_line(names: Sequence[str], cells: Sequence[str]) -> bool:
    if "source" not in names:
        return False
    at = names.index("source")
    return at < len(cells) and cells[at].strip().casefold() == TRACKED_SOURCE


def _row(
    number: int, names: Sequence[str], cells: Sequence[str]
) -> tuple[EngagementRow | None, list[RowProblem]]:
    problems: list[RowProblem] = []
    if len(cells) > len(names):
        extra = [c for c in cells[len(names) :] if c.strip()]
        if extra:
            message = f"has {len(cells)} cells but the header names only {len(names)} columns."
            problems.append(RowProblem(number, None, message))
    value = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(names)}
    post_id = _post_id(number, value.get("post_id", ""), problems)
    external_id = value.get("external_id", "") or None
    if external_id is not None and len(external_id) > 200:
        problems.append(RowProblem(number, "external_id", "is longer than 200 characters."))
    if post_id is None and external_id is None and not any(p.column == "post_id" for p in problems):
        problems.append(RowProblem(number, None, "needs a post_id or an external_id."))
    collected_at = _collected_at(number, value.get("collected_at", ""), problems)
    figures: dict[str, int | None] = {}
    for name in FIGURES:
        if name in value:
            figures[name] = _figure(number, name, value[name], problems)
    if figures and all(v is None for v in figures.values()) and not problems:
        problems.append(RowProblem(number, None, "has no figures: every figure cell is empty."))
    if problems or collected_at is None:
        return None, problems
    return EngagementRow(number, post_id, external_id, collected_at, figures), []


def _post_id(number: int, cell: str, problems: list[RowProblem]) -> int | None:
    if not cell:
        return None
    if not cell.isascii() or not cell.isdigit() or not 0 < int(cell) <= _MAX_ID:
        problems.append(RowProblem(number, "post_id", f"“{cell}” is not a post number."))
        return None
    return int(cell)


def _collected_at(number: int, cell: str, problems: list[RowProblem]) -> dt.datetime | None:
    if not cell:
        problems.append(RowProblem(number, "collected_at", "is empty; it is required."))
        return None
    try:
        when = dt.datetime.fromisoformat(cell.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        problems.append(
            RowProblem(
                number,
                "collected_at",
                f"“{cell}” is not a date and time; write it like 2026-03-01T09:30:00+00:00.",
            )
        )
        return None
    if when.tzinfo is None or when.utcoffset() is None:
        problems.append(
            RowProblem(
                number,
                "collected_at",
                f"“{cell}” has no UTC offset; add one, like 2026-03-01T09:30:00+00:00.",
            )
        )
        return None
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:  # a year-1 or year-9999 time that no UTC instant can hold
        problems.append(RowProblem(number, "collected_at", f"“{cell}” is out of range."))
        return None


def _figure(number: int, name: str, cell: str, problems: list[RowProblem]) -> int | None:
    if not cell:
        return None
    if not cell.isascii() or not _INTEGER.fullmatch(cell):
        problems.append(RowProblem(number, name, f"“{cell}” is not a whole number of 0 or more."))
        return None
    figure = int(cell.replace(",", ""))
    if figure > MAX_FIGURE:
        problems.append(RowProblem(number, name, f"{cell} is too large to be a real figure."))
        return None
    return figure


def _listed() -> str:
    return ", ".join(COLUMNS) + " (and, from an export, " + ", ".join(EXPORT_ONLY) + ")"


def write(rows: Iterable[Sequence[str]]) -> str:
    """Export lines (header first), every cell defused against spreadsheet formulas."""
    return csv_files.write(rows)
