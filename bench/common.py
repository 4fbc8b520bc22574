"""What the benchmarks share: a fresh migrated database of either kind, and a closed-loop load
of keep-alive HTTP clients with its latencies."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from campaign.migrate import upgrade  # noqa: E402


@contextlib.contextmanager
def database(kind: str, workdir: Path, name: str = "bench") -> Iterator[str]:
    """A fresh, migrated database of this kind (`sqlite`: a file in `workdir`; `postgresql`: a
    throwaway cluster from tests/pgserver.py); yields its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'{name}.sqlite3'}"
        upgrade(url)
        yield url
        return
    from tests.pgserver import create_database, running_postgres

    with running_postgres() as server:
        url = create_database(server, f"campaign_{name}")
        upgrade(url)
        yield url


@dataclass
class Run:
    """One path's load: how many requests, how long, each latency, and the statuses."""

    path: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# One request of a client: (its session, the client's index, the request's number) -> status,
# 0 when there was no answer.
Send = Callable[[requests.Session, int, int], int]


def closed_loop(sessions: list[requests.Session], path: str, total: int, send: Send) -> Run:
    """`total` requests shared between the sessions, one thread each, all released together;
    each client sends its next request as soon as the last one is answered."""
    clients = len(sessions)
    share = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict[int, int]] = [{} for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        start.wait()
        for n in range(share[index]):
            began = time.perf_counter()
            status = send(sessions[index], index, n)
            latencies[index].append(time.perf_counter() - began)
            statuses[index][status] = statuses[index].get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    merged: dict[int, int] = {}
    for counted in statuses:
        for status, n in counted.items():
            merged[status] = merged.get(status, 0) + n
    return Run(path, total, seconds, [x for part in latencies for x in part], merged)
