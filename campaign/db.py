"""Declarative base, the aware-UTC column type, engines and the one session factory."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC; naive values are refused, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: only aware datetimes may be stored")
        utc = value.astimezone(dt.UTC)
        # SQLite has no timezone storage: keep the UTC wall time, restored as UTC on read.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


intpk = Annotated[int, mapped_column(primary_key=True)]
str80 = Annotated[str, mapped_column(String(80))]
str200 = Annotated[str, mapped_column(String(200))]


def utcnow() -> dt.datetime:
    """The application clock, as an aware UTC datetime (for records, not for what is due)."""
    return dt.datetime.now(dt.UTC)


def database_now(session: Session) -> dt.datetime:
    """The database server's clock as an aware UTC datetime: what is due is decided by it."""
    if session.get_bind().dialect.name == "sqlite":
        raw = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
    value: dt.datetime = session.execute(text("SELECT statement_timestamp()")).scalar_one()
    return value.astimezone(dt.UTC)


class ReadOnlyTransactionError(RuntimeError):
    """A statement tried to write inside a transaction begun in `read_only()`."""


# Whether transactions begun now only read; set by read_only(), read when one begins.
_read_only: ContextVar[bool] = ContextVar("campaign_read_only", default=False)
# The mode of the transaction a connection is in (SQLite: also its PRAGMA query_only).
_READ_ONLY_INFO = "campaign_read_only"
_SQLITE_READONLY = 8  # SQLITE_READONLY, "attempt to write a readonly database"
_PG_READ_ONLY_TRANSACTION = "25006"  # read_only_sql_transaction


@contextlib.contextmanager
def read_only() -> Iterator[None]:
    """Every transaction begun inside this block (in this thread) only reads; also a decorator.

    On SQLite such a transaction begins deferred (plain BEGIN) instead of taking the write lock
    (BEGIN IMMEDIATE): in WAL mode it neither waits for a writer nor holds one up. It runs with
    PRAGMA query_only, turned off again when the connection next begins a writing transaction.
    On PostgreSQL it is SET TRANSACTION READ ONLY. Either way a write is refused at once with
    ReadOnlyTransactionError, never upgraded to a write lock (which in WAL mode can fail with
    SQLITE_BUSY at once). Only for code that never writes; a transaction already open when the
    block starts keeps its own mode.
    """
    token = _read_only.set(True)
    try:
        yield
    finally:
        _read_only.reset(token)


def _refuse_writes(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        original = context.original_exception
        refused = getattr(original, "sqlite_errorcode", None) == _SQLITE_READONLY or (
            getattr(original, "sqlstate", None) == _PG_READ_ONLY_TRANSACTION
        )
        connection = context.connection
        if refused and connection is not None and connection.info.get(_READ_ONLY_INFO, False):
            raise ReadOnlyTransactionError(
                "A write was attempted in a read-only transaction (one begun inside "
                f"campaign.db.read_only()): {original}"
            ) from context.sqlalchemy_exception


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN, so that it can be BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = _read_only.get()
        if connection.info.get(_READ_ONLY_INFO, False) != reading:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if reading else 'OFF'}")
            connection.info[_READ_ONLY_INFO] = reading
        # A writing transaction takes the write lock up front, which avoids SQLITE_BUSY
        # deadlocks on lock upgrade; a read-only one takes no lock at all.
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    _refuse_writes(engine)


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = _read_only.get()
        connection.info[_READ_ONLY_INFO] = reading
        if reading:
            # psycopg sends BEGIN before the first statement, so this opens the transaction.
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    _refuse_writes(engine)


def make_engine(url: str, *, echo: bool = False, busy_timeout_ms: int = 5000) -> Engine:
    """An engine for SQLite (WAL, busy timeout, immediate writes) or PostgreSQL (psycopg 3)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    engine = create_engine(url, echo=echo, pool_pre_ping=True)
    _configure_postgresql(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """The single session factory; sessions do not expire objects on commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
