"""A node that falls behind the bus catches up in batches Redis never cuts, and says how far behind it is.

Redis here caps a normal client's output buffer at 1 MB (`client-output-buffer-limit normal`), as
a managed Redis may. Node B is paused (SIGSTOP) while node A takes events of 8 KB, more than 1 MB of
them; a reader asking for 1,024 entries at once would be cut by Redis and ask again forever. After
SIGCONT, B delivers every event in order, Redis never closes its bus connection, and `/up` and
`revurb_bus_lag_seconds{direction="read"}` show the lag, then 0 once B has caught up.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import StartCluster, eventually, up
from tests.support.fixture_types import ConnectToNode
from tests.support.http import trigger
from tests.support.metrics import scrape, value
from tests.support.pusher_socket import unique
from tests.support.servers import RedisServer, free_port

EVENTS = 150
DATA_BYTES = 8000
#: How long B stays paused after the last trigger: the least lag it must report.
PAUSED_AFTER = 1.0
TOKEN = "lag"
#: Redis cuts a normal client whose output buffer passes 1 MB (or 512 KB for 5 s).
CAP = ("--client-output-buffer-limit", "normal 1mb 512kb 5")
METRICS = {"REVURB_METRICS": "true", "REVURB_METRICS_PORT": "0", "REVURB_METRICS_TOKEN": TOKEN}


@pytest.fixture
def capped_redis(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(port=free_port(), directory=str(tmp_path), extra=CAP)
    redis.start()
    yield redis
    redis.stop()


@pytest.mark.redis
@pytest.mark.timeout(90)
async def test_a_paused_node_catches_up_uncut_and_reports_its_lag(
    capped_redis: RedisServer, cluster: StartCluster, client: ConnectToNode
) -> None:
    a, b = cluster(2, env=METRICS, urls=[capped_redis.url] * 2)
    channel = unique("lag-")
    subscriber = await client(b)
    await subscriber.subscribe(channel)
    padding = "x" * DATA_BYTES

    os.kill(b.process.pid, signal.SIGSTOP)
    try:
        for n in range(EVENTS):
            await trigger(a, channel, "tick", f"{n} {padding}")
        await asyncio.sleep(PAUSED_AFTER)
    finally:
        os.kill(b.process.pid, signal.SIGCONT)

    # While B reads its backlog, and until its next read finds nothing new, it reports the lag.
    seen = {"up": 0.0, "metric": 0.0}
    metrics_url = f"{b.http_url}/metrics"

    async def lag_seen() -> bool:
        scaling = (await up(b))["scaling"]
        seen["up"] = max(seen["up"], scaling["bus_lag_seconds"])
        read = value(await scrape(metrics_url, TOKEN), "revurb_bus_lag_seconds", direction="read")
        seen["metric"] = max(seen["metric"], read or 0.0)
        return min(seen.values()) >= PAUSED_AFTER

    await eventually(lag_seen, timeout=20, every=0.02)
    for n in range(EVENTS):
        event = await subscriber.recv_event("tick", timeout=20)
        assert event["data"] == f"{n} {padding}"

    async def caught_up() -> bool:
        body = await up(b)
        read = value(await scrape(metrics_url, TOKEN), "revurb_bus_lag_seconds", direction="read")
        return body["scaling"]["bus_lag_seconds"] == 0.0 and read == 0.0

    await eventually(caught_up, timeout=10)
    body = await up(b)
    assert body["health"] == "OK" and body["scaling"]["connected"] is True
    # Redis never cut the bus connection. (A paused process may find its own read timeout expired
    # when it resumes, and reconnect: that is the pause, not Redis.)
    assert "Connection closed by server" not in b.output(), b.output()[-3000:]
