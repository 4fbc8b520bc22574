import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from campaign.models import Organisation
from tests.factories import make_org


def test_aware_times_are_stored_as_utc_and_read_back_aware(db):
    london_summer = dt.datetime(2026, 6, 1, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    org = make_org(db, "tz-check", london_summer)
    db.expire_all()
    stored = db.scalar(select(Organisation.created_at).where(Organisation.id == org.id))
    assert stored.tzinfo is not None
    assert stored.utcoffset() == dt.timedelta(0)
    assert stored == dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


def test_naive_datetimes_are_refused(db):
    with pytest.raises(StatementError, match="naive datetime"):
        make_org(db, "naive", dt.datetime(2026, 1, 1, 12, 0))


def test_unknown_timezone_is_refused(db):
    from campaign.services import ServiceError
    from campaign.services.organisations import create_organisation

    with pytest.raises(ServiceError, match="Mars/Olympus"):
        create_organisation(db, "mars-uni", "Mars", "Mars/Olympus", dt.datetime.now(dt.UTC))
