"""Two sources of one organisation ingesting the same new job at the same moment make one
vacancy: ingests into an organisation are serialised (issue #17, "never creates a second one")."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import func, select

from campaign.models import Vacancy, VacancySource
from campaign.services import vacancies as service
from campaign.services.vacancy_sources import normalise_items
from campaign.vacancies.detect import parse_document
from tests.factories import make_org

NOW = dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC)
# How long an ingest that has read its candidates waits for the other to read its own. The
# other can only get there if nothing serialises them; with the lock it is still waiting.
OVERLAP = 2.0
WAIT = 60.0


def _feed(guid: str, url: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://careers.kestrel.example/</link><description>d</description>"
        "<item><title>Graduate Data Analyst</title>"
        "<link>https://careers.kestrel.example/jobs/analyst</link>"
        f'<guid isPermaLink="false">{guid}</guid><description>From {url}</description></item>'
        "</channel></rss>"
    ).encode()


def _ingest(factory: Any, source_id: int) -> list[int]:
    with factory.begin() as session:
        source = session.get(VacancySource, source_id)
        parsed = parse_document(_feed(f"g-{source_id}", source.url), source_url=source.url)
        items, problems = normalise_items(
            parsed.items, tz="Europe/London", now=NOW, source_url=source.url, scope=str(source_id)
        )
        assert problems == []
        return service.ingest(session, source, items, NOW).ids


def test_two_sources_ingesting_one_new_job_at_once_make_one_vacancy(factory, monkeypatch):
    with factory.begin() as session:
        org = make_org(session, "ingest-race", NOW)
        ids = []
        for name in ("Kestrel", "Aggregator"):
            source = VacancySource(
                organisation_id=org.id, name=name, kind="feed", created_at=NOW,
                url=f"https://{name.lower()}.example/feed",
            )  # fmt: skip
            session.add(source)
            session.flush()
            ids.append(source.id)
        org_id = org.id

    arrived = {name: threading.Event() for name in ("first", "second")}
    real = service.candidates

    def candidates(session: Any, organisation_id: int, keys: Any) -> Any:
        found = real(session, organisation_id, keys)
        me = threading.current_thread().name
        arrived[me].set()
        other = "second" if me == "first" else "first"
        arrived[other].wait(OVERLAP)
        return found

    monkeypatch.setattr(service, "candidates", candidates)
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def run(name: str, source_id: int) -> None:
        try:
            results[name] = _ingest(factory, source_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, name=name, args=(name, source_id))
        for name, source_id in zip(("first", "second"), ids, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads) and errors == [], errors
    with factory() as session:
        count = session.scalar(
            select(func.count()).select_from(Vacancy).where(Vacancy.organisation_id == org_id)
        )
    assert count == 1
    assert results["first"] == results["second"]
