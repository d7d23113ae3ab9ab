"""Clients that recommend and score through a URL while a test breaks things, and what they were told."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.servers import ask

RECOMMEND = {"age": 31, "gender": "F", "occupation": "engineer", "max_recs": 3}


def login(url: str, password: str) -> dict[str, str]:
    answer = requests.post(f"{url}/api/login", json={"session_password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@dataclass
class Traffic:
    """`clients` threads, each recommending then scoring the first title, until the block ends.

    Whatever was acknowledged (a 200) is kept, to be looked up in the database afterwards; every other
    answer is counted by route and status (or by exception for a connection that failed). With
    retry_after, a client asks again as a 503's Retry-After says (at most RETRIES times), as the README
    tells clients to, and only the last answer counts; the 503s it waited out are counted in `waited`.
    """

    url: str
    headers: dict[str, str]
    clients: int = 4
    recommended: list[str] = field(default_factory=list)
    scored: list[tuple[str, str]] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    requests_sent: int = 0
    retry_after: bool = False
    waited: Counter = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def failed(self, route: str = "") -> int:
        return sum(count for (failed_route, _), count in self.failures.items() if failed_route.startswith(route))

    def report(self) -> str:
        return f"{self.requests_sent} requests, {self.failed()} failed: {dict(self.failures)}"

    def _client(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                answer = self._post(session, "recommend", RECOMMEND)
                if answer is None:
                    continue
                recommendation = answer.json()
                with self._lock:
                    self.recommended.append(recommendation["id"])
                movie = recommendation["recommendations"][0]
                if self._post(session, "score", {"id": recommendation["id"], "movie": movie, "score": 4}):
                    with self._lock:
                        self.scored.append((recommendation["id"], movie))

    def _post(self, session: requests.Session, route: str, body: dict) -> requests.Response | None:
        path = "/api/recommend" if route == "recommend" else "/api/recommend/score"
        answer, outcome, waits = ask(session, f"{self.url}{path}", body, self.headers, retry_after=self.retry_after)
        with self._lock:
            self.requests_sent += 1
            self.waited[route] += waits
            if outcome != 200:
                self.failures[(route, outcome)] += 1
        return answer if outcome == 200 else None
