"""The dashboard from a test's side: servers with it enabled, a logged-in HTTP client, an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import DEFAULT_APP, RunningServer

SECRET = "dashboard-secret-for-tests"
ENABLED = {"REVURB_DASHBOARD": "true", "REVURB_DASHBOARD_SECRET": SECRET}
#: A second app beside the default one (1001 / app-key / app-secret).
OTHER_APP = {"app_id": "2002", "key": "other-key", "secret": "other-secret"}
SSE_TIMEOUT = 5.0

Event = tuple[str, dict[str, Any]]


def two_apps_config(directory: Path) -> Path:
    """A config file with the default app and `OTHER_APP` (the environment's app merges into the first)."""
    first = {
        "app_id": DEFAULT_APP["REVERB_APP_ID"],
        "key": DEFAULT_APP["REVERB_APP_KEY"],
        "secret": DEFAULT_APP["REVERB_APP_SECRET"],
    }
    path = directory / "two-apps.json"
    path.write_text(json.dumps({"apps": {"apps": [first, OTHER_APP]}}))
    return path


def base_url(server: RunningServer) -> str:
    return f"{server.http_url}/dashboard"


class Dashboard:
    """An HTTP client of one server's dashboard, keeping its session cookie."""

    def __init__(self, server: RunningServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client
        self.base = base_url(server)

    async def login(self, secret: str = SECRET, key: str | None = None) -> httpx.Response:
        body: dict[str, str] = {"secret": secret}
        if key is not None:
            body["key"] = key
        return await self.client.post(f"{self.base}/login", json=body)

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.client.get(f"{self.base}{path}", params=params)

    async def post(self, path: str, payload: Any) -> httpx.Response:
        return await self.client.post(f"{self.base}{path}", json=payload)

    @contextlib.asynccontextmanager
    async def stream(self, **params: str) -> AsyncIterator[SseReader]:
        """`GET api/stream` held open for the block; read it with the reader."""
        async with self.client.stream("GET", f"{self.base}/api/stream", params=params) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield SseReader(response)


@contextlib.asynccontextmanager
async def dashboard(server: RunningServer, **options: Any) -> AsyncIterator[Dashboard]:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False, **options) as client:
        yield Dashboard(server, client)


class SseReader:
    """Server-Sent Events off a streaming response: `event:` and `data:` lines, JSON data."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.seen: list[Event] = []

    async def _next(self) -> Event:
        kind, data = "message", ""
        async for line in self.lines:
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif line == "" and data:
                return kind, json.loads(data)
        raise AssertionError(f"the stream ended; events so far: {self.seen}")

    async def any(self, timeout: float = SSE_TIMEOUT) -> Event:
        """The next event, whatever its kind."""
        async with asyncio.timeout(timeout):
            event = await self._next()
        self.seen.append(event)
        return event

    async def next(
        self,
        kind: str,
        matches: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = SSE_TIMEOUT,
    ) -> dict[str, Any]:
        """The next event of this kind that `matches`, skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._next()
                self.seen.append(event)
                if event[0] == kind and matches(event[1]):
                    return event[1]

    async def entries(self, count: int, timeout: float = SSE_TIMEOUT) -> list[dict[str, Any]]:
        """The next `count` console entries (from as many `console` events as it takes)."""
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while len(found) < count:
                batch = await self.next("console", timeout=timeout)
                found += batch["entries"]
        assert len(found) == count, f"expected {count} entries, got {found}"
        return found
