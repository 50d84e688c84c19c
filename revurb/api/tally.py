"""HTTP API requests as plain counters and latency buckets, read by `revurb.server.metrics`."""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds (seconds) of the latency buckets; a last, unbounded bucket follows.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class ApiTally:
    """Requests by (endpoint, status) and, per endpoint, how long they took."""

    __slots__ = ("requests", "buckets", "seconds")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        #: Endpoint -> request count per latency bucket (not cumulative; the last is +Inf).
        self.buckets: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}

    def record(self, endpoint: str, status: int, elapsed: float) -> None:
        key = (endpoint, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        buckets = self.buckets.get(endpoint)
        if buckets is None:
            buckets = self.buckets[endpoint] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.seconds[endpoint] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.seconds[endpoint] += elapsed
