"""Read-only transactions (campaign.db.read_only): deferred on SQLite, refused writes on both."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from campaign.db import ReadOnlyTransactionError, make_engine, make_session_factory, read_only


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    url = f"sqlite:///{tmp_path / 'readonly.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def impatient(sqlite_url: str) -> Iterator[Engine]:
    """A second engine on the same file that gives up on a lock after 50 ms."""
    engine = make_engine(sqlite_url, busy_timeout_ms=50)
    yield engine
    engine.dispose()


@pytest.fixture
def any_engine(db_kind: str, fresh_database_url: Any) -> Iterator[Engine]:
    """An engine on an empty database of each kind, with one table of one row."""
    engine = make_engine(fresh_database_url(db_kind))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    yield engine
    engine.dispose()


def _read_only_setting(connection: Any, kind: str) -> bool:
    if kind == "sqlite":
        return bool(connection.exec_driver_sql("PRAGMA query_only").scalar())
    return connection.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"


class HeldReader(threading.Thread):
    """A thread that begins a transaction, reads, and keeps it open until released."""

    def __init__(self, engine: Engine, *, reading_only: bool) -> None:
        super().__init__(daemon=True)
        self.engine, self.reading_only = engine, reading_only
        self.started_reading, self.release = threading.Event(), threading.Event()
        self.counts: list[int] = []
        self.error: BaseException | None = None

    def _read_twice(self) -> None:
        with self.engine.connect() as connection:
            self.counts.append(connection.execute(text("SELECT count(*) FROM t")).scalar_one())
            self.started_reading.set()
            self.release.wait(timeout=30)
            self.counts.append(connection.execute(text("SELECT count(*) FROM t")).scalar_one())
            connection.rollback()

    def run(self) -> None:
        try:
            if self.reading_only:
                with read_only():
                    self._read_twice()
            else:
                self._read_twice()
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.started_reading.set()

    def __enter__(self) -> HeldReader:
        self.start()
        assert self.started_reading.wait(timeout=30), "the reader never began"
        assert self.error is None, self.error
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        self.join(timeout=30)
        assert self.error is None, self.error


def test_a_long_read_only_transaction_does_not_block_a_writer(sqlite_engine, impatient):
    # The writer gets the lock at once (it would give up after 50 ms) and commits.
    with HeldReader(sqlite_engine, reading_only=True) as reader, impatient.begin() as writer:
        writer.execute(text("INSERT INTO t VALUES (2)"))
    # The reader kept its snapshot: the row written meanwhile is not in its transaction.
    assert reader.counts == [1, 1]
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 2


def test_the_normal_path_still_takes_the_write_lock_up_front(sqlite_engine, impatient):
    with (
        HeldReader(sqlite_engine, reading_only=False),
        pytest.raises(Exception, match="locked"),
        impatient.begin() as writer,
    ):
        writer.execute(text("INSERT INTO t VALUES (2)"))


def test_a_block_in_one_thread_leaves_other_threads_writing(sqlite_engine, impatient):
    # Threads do not inherit the mark: a thread started inside a block still takes the lock.
    with contextlib.ExitStack() as stack:
        with read_only():
            stack.enter_context(HeldReader(sqlite_engine, reading_only=False))
        with pytest.raises(Exception, match="locked"), impatient.begin() as writer:
            writer.execute(text("INSERT INTO t VALUES (2)"))


def test_read_only_sessions_read_while_a_writer_holds_the_lock(sqlite_engine, impatient):
    with sqlite_engine.begin() as holder:
        holder.execute(text("INSERT INTO t VALUES (2)"))
        with read_only(), make_session_factory(impatient)() as session:
            # The uncommitted row is not seen, and no lock is waited for.
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        with pytest.raises(Exception, match="locked"), impatient.connect() as writing:
            writing.execute(text("SELECT 1"))


def test_a_write_in_a_read_only_block_is_refused_loudly(any_engine, db_kind):
    factory = make_session_factory(any_engine)
    with read_only(), factory() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        assert _read_only_setting(session.connection(), db_kind)
        with pytest.raises(ReadOnlyTransactionError, match="read-only transaction"):
            session.execute(text("INSERT INTO t VALUES (2)"))
        session.rollback()
    with factory() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_the_connection_writes_again_once_the_block_is_over(any_engine, db_kind):
    with read_only(), any_engine.connect() as connection:
        assert _read_only_setting(connection, db_kind)
        connection.rollback()
    # The same pooled connection (one thread, one at a time) begins a writing transaction.
    with any_engine.begin() as connection:
        assert not _read_only_setting(connection, db_kind)
        connection.execute(text("INSERT INTO t VALUES (2)"))
    with any_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 2


def test_a_transaction_open_before_the_block_keeps_its_mode(any_engine, db_kind):
    with any_engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        with read_only():
            assert not _read_only_setting(connection, db_kind)
            connection.execute(text("INSERT INTO t VALUES (2)"))
        connection.commit()
        with read_only():
            # The next transaction begins inside the block, so it is read-only.
            assert _read_only_setting(connection, db_kind)
            connection.rollback()


def test_it_decorates_a_function_and_nests(any_engine, db_kind):
    @read_only()
    def count() -> int:
        with any_engine.connect() as connection:
            assert _read_only_setting(connection, db_kind)
            return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())

    with read_only():
        assert count() == 1
        with any_engine.connect() as connection:
            assert _read_only_setting(connection, db_kind)
    assert count() == 1
    with any_engine.begin() as connection:
        assert not _read_only_setting(connection, db_kind)
        connection.execute(text("INSERT INTO t VALUES (2)"))


def test_other_errors_in_a_read_only_block_are_left_alone(any_engine):
    with read_only(), any_engine.connect() as connection:
        with pytest.raises(Exception, match=r"no such table|does not exist") as info:
            connection.execute(text("SELECT * FROM no_such_table"))
        assert not isinstance(info.value, ReadOnlyTransactionError)
