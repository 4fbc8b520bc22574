"""The database clock as a SQL expression, read inside a statement rather than by a query.

`database_now(session)` (campaign.db) costs a round trip of its own. Where a statement only
needs to store or compare "now" (or "now" plus a number of seconds, `database_clock_plus`),
`database_clock()` reads the same clock inside it:
`statement_timestamp()` on PostgreSQL, and on SQLite the UTC wall time in the text form the
UTCDateTime type stores (`YYYY-MM-DD HH:MM:SS.ffffff`, to the millisecond, as database_now
reads it), so that stored values and comparisons stay consistent with Python-side ones.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from campaign.db import UTCDateTime


class database_clock(FunctionElement[dt.datetime]):
    """The database server's clock now, as an aware UTC datetime column expression."""

    type = UTCDateTime()
    inherit_cache = True
    name = "database_clock"


@compiles(database_clock)
def _generic(_element: database_clock, _compiler: Any, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(database_clock, "postgresql")
def _postgresql(_element: database_clock, _compiler: Any, **_kw: Any) -> str:
    # Stable within a statement; the same clock campaign.db.database_now reads.
    return "statement_timestamp()"


@compiles(database_clock, "sqlite")
def _sqlite(_element: database_clock, _compiler: Any, **_kw: Any) -> str:
    # 'now' is stable within a statement. %f gives SS.SSS; three zeros make the microseconds
    # of the stored text form.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


class database_clock_plus(FunctionElement[dt.datetime]):
    """The database clock plus `seconds` (a numeric expression, usually a bound parameter)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "database_clock_plus"

    def __init__(self, seconds: ColumnElement[Any]) -> None:
        super().__init__(seconds)


@compiles(database_clock_plus)
def _generic_plus(element: database_clock_plus, compiler: Any, **kw: Any) -> str:
    # Standard SQL, for str(statement); the app runs on the two dialects below.
    seconds = compiler.process(element.clauses, **kw)
    return f"(CURRENT_TIMESTAMP + {seconds} * INTERVAL '1' SECOND)"


@compiles(database_clock_plus, "postgresql")
def _postgresql_plus(element: database_clock_plus, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => {seconds}))"


@compiles(database_clock_plus, "sqlite")
def _sqlite_plus(element: database_clock_plus, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('%+.6f seconds', {seconds}))"


def stored_time(dialect: Dialect) -> Callable[[dt.datetime], Any]:
    """UTCDateTime's own conversion of an aware datetime to what the driver is given (on
    SQLite the text form above), for statements run with exec_driver_sql.

    It remembers its answers: within a batch most times are one and the same (entries stored by
    one statement, deliveries due together), so use a fresh one per batch.
    """
    convert = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    return functools.cache(convert) if convert is not None else (lambda value: value)


def loaded_time(dialect: Dialect) -> Callable[[Any], Any]:
    """UTCDateTime's own conversion of what the driver returns to an aware UTC datetime; it
    remembers its answers like stored_time."""
    convert = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    return functools.cache(convert) if convert is not None else (lambda value: value)
