"""`bench/run webhooks`: the soak scenario (steady subscribers of one channel, churning ones beside
them) served plain and, interleaved, with webhooks whose receiver is down.

Every churning subscribe and unsubscribe makes a `subscription_count` webhook event, so the server
keeps sending to a port where nothing listens (connection refused, retried with backoff, its queue
full and dropping). The steady subscribers' delay is what must not change.
"""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

#: Every kind, `subscription_count` included (the one the churn makes).
KINDS = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "subscription_count"]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def receiver_down_variant() -> str:
    """A `--variant` spec: the benchmark app (first app, merged by position) with one webhook URL
    that refuses connections, through a config file named by `REVURB_CONFIG`."""
    url = f"http://127.0.0.1:{_closed_port()}/hooks"
    config = {"apps": {"apps": [{"webhooks": [{"url": url, "event_types": KINDS}]}]}}
    handle, name = tempfile.mkstemp(prefix="revurb-bench-webhooks-", suffix=".json")
    with open(handle, "w") as file:
        json.dump(config, file)
    return f"receiver-down:REVURB_CONFIG={Path(name)}"
