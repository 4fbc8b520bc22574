import pytest
from sqlalchemy import text

from campaign.db import make_engine


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}", busy_timeout_ms=4321)
    yield engine
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4321
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_transactions_take_the_lock_up_front(sqlite_engine):
    # BEGIN IMMEDIATE: a second writer waits (then fails after the timeout) at BEGIN, not mid-way.
    with sqlite_engine.begin() as first:
        first.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    quick = make_engine(str(sqlite_engine.url), busy_timeout_ms=50)
    try:
        with sqlite_engine.begin() as holder:
            holder.execute(text("INSERT INTO t VALUES (1)"))
            with pytest.raises(Exception, match="locked"), quick.begin() as second:
                second.execute(text("SELECT 1"))
    finally:
        quick.dispose()


def test_database_clock_is_aware_utc_and_close_to_ours(db):
    import datetime as dt

    from campaign.db import database_now, utcnow

    server = database_now(db)
    assert server.tzinfo is not None and server.utcoffset() == dt.timedelta(0)
    assert abs(server - utcnow()) < dt.timedelta(seconds=5)
