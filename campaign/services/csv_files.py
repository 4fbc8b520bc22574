"""CSV files people upload and download: reading them safely and writing them defused.

Shared by every import and export (posts, engagement): the same size and row caps, the same
messages for a file saved in the wrong encoding or with broken quoting, the same header checks,
and the same protection against spreadsheet formulas in exported cells.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence

from campaign.services import ServiceError

# A cell a spreadsheet would run as a formula starts with one of these; export puts a quote
# before it, and import takes that quote off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CsvFileError(ServiceError):
    """The whole file is refused (size, encoding, header); nothing in it was checked."""

    def __init__(self, *messages: str) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise CsvFileError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; at most "
            f"{max_bytes / 1024 / 1024:.0f} MB can be imported at once. Split it into smaller "
            "files."
        )


def decode(data: bytes) -> str:
    """The file as text: UTF-8, with or without a byte-order mark; anything else is refused."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvFileError(
            "The file is UTF-16 text, which cannot be imported. Save it from your spreadsheet "
            "as “CSV UTF-8 (comma delimited)” and upload it again."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFileError(
            f"The file is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} is not "
            "UTF-8. Save it from your spreadsheet as “CSV UTF-8 (comma delimited)” and upload "
            "it again."
        ) from None


def records(text: str, max_rows: int) -> list[list[str]]:
    """Every record of the file, blank ones included (so line numbers stay true)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    found: list[list[str]] = []
    data_rows = -1  # the header is not a data row
    try:
        for record in reader:
            found.append(record)
            if any(c.strip() for c in record):
                data_rows += 1
            if data_rows > max_rows:
                raise CsvFileError(
                    f"The file has more than {max_rows:,} rows; at most {max_rows:,} can be "
                    "imported at once. Split it into smaller files."
                )
    except csv.Error as exc:
        raise CsvFileError(
            f"Line {len(found) + 1} is not valid CSV ({exc}). A cell holding a comma, a quote "
            "or a line break must be in double quotes, with each quote inside it doubled."
        ) from None
    return found


def header_at(found: Sequence[Sequence[str]]) -> int | None:
    """The index of the first non-blank record (the header), None for an empty file."""
    return next((i for i, r in enumerate(found) if any(c.strip() for c in r)), None)


def header_names(record: Sequence[str]) -> list[str]:
    return [unescape(c).strip().lower() for c in record]


def header_problems(
    names: Sequence[str], known: Iterable[str], required: Iterable[str], listed: str
) -> list[str]:
    """What is wrong with a header: unknown, missing and repeated columns, each named."""
    problems = []
    known_set = set(known)
    unknown = [n for n in names if n and n not in known_set]
    if unknown:
        problems.append(
            f"Unknown column{'s' if len(unknown) > 1 else ''}: {quoted(unknown)}. "
            f"The columns are {listed}."
        )
    missing = [c for c in required if c not in names]
    if missing:
        problems.append(
            f"Missing column{'s' if len(missing) > 1 else ''}: {quoted(missing)}. "
            "The first line must be the header."
        )
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        problems.append(f"These columns appear more than once: {quoted(twice)}.")
    return problems


def quoted(names: Iterable[str]) -> str:
    return ", ".join(f"“{n}”" for n in names)


def unescape(cell: str) -> str:
    """Take off the quote that export puts before a cell a spreadsheet would run as a formula."""
    if cell.startswith("'") and cell[1:2] and cell[1] in FORMULA_START:
        return cell[1:]
    return cell


def defused(cell: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return f"'{cell}" if cell.startswith(FORMULA_START) else cell


def write(lines: Iterable[Sequence[str]]) -> str:
    """CSV text with every cell defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    for line in lines:
        writer.writerow([defused(cell) for cell in line])
    return out.getvalue()
