"""`revurb start --log-format json`: every log line is one JSON object (the banner stays text)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.support.servers import RunningServer


async def test_json_log_lines(start_server: Callable[..., RunningServer]) -> None:
    server = start_server(args=["--log-format", "json"])
    server.stop()
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    by_logger = {entry["logger"]: entry for entry in entries}
    assert set(by_logger) >= {"revurb.limits", "revurb.server.drain"}
    drained = [e for e in entries if e["logger"] == "revurb.server.drain"]
    assert drained[0]["message"] == "draining: 0 sockets told to reconnect over 5 s, exit within 20 s"
    for entry in entries:
        assert {"time", "level", "logger", "message", "pid"} <= set(entry)
        assert entry["pid"] == server.process.pid
    # Nothing else on the output but the banner (plain text, for people).
    others = [line for line in server.output().splitlines() if not line.startswith("{")]
    assert others[0].startswith("Revurb ") and all(not line.startswith("20") for line in others)
