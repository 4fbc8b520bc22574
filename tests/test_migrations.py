from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from campaign.db import Base, make_engine
from campaign.migrate import alembic_config, downgrade, upgrade


def _head():
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(url):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), set(
                inspect(conn).get_table_names()
            )
    finally:
        engine.dispose()


def test_upgrade_from_empty_to_head_then_down_one_and_back(db_kind, fresh_database_url):
    url = fresh_database_url(db_kind)
    upgrade(url)
    revision, tables = _current(url)
    assert revision == _head()
    assert set(Base.metadata.tables) <= tables

    downgrade(url, "-1")
    revision, _ = _current(url)
    assert revision != _head()

    upgrade(url)
    assert _current(url)[0] == _head()


def test_downgrade_to_base_removes_every_table(db_kind, fresh_database_url):
    url = fresh_database_url(db_kind)
    upgrade(url)
    downgrade(url, "base")
    _, tables = _current(url)
    assert tables & set(Base.metadata.tables) == set()


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
