"""Failed dashboard logins, limited per client address."""

from __future__ import annotations

import time
from collections import OrderedDict

#: Failed logins allowed per address within `WINDOW_SECONDS`; more are refused (429) until it ends.
MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
#: Addresses remembered at most; the longest-quiet ones are forgotten first.
MAX_ADDRESSES = 10_000


class LoginThrottle:
    """Counts failures per address in a fixed window; bounded in memory."""

    def __init__(
        self, failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS, size: int = MAX_ADDRESSES
    ) -> None:
        self.failures, self.window, self.size = failures, window, size
        #: address -> (window start, failures in it), least recently failed first.
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, address: str, now: float | None = None) -> float:
        """Seconds until this address may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        seen = self._seen.get(address)
        if seen is None:
            return 0.0
        started, count = seen
        left = started + self.window - now
        if left <= 0:
            del self._seen[address]
            return 0.0
        return left if count >= self.failures else 0.0

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        started, count = self._seen.pop(address, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        self._seen[address] = (started, count + 1)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)
