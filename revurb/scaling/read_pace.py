"""How much the bus reader asks Redis for at once, and how far behind the bus it reads.

A node that falls behind (a paused process, a burst its loop cannot keep up with) catches up by
reading the stream in batches. Redis builds each XREAD reply in the client's output buffer, and a
deployment may cap that buffer for normal clients (`client-output-buffer-limit normal ...`): a
reply over the cap closes the connection, the node reconnects and asks for the same reply again,
and never catches up. So a batch is sized in bytes, not entries: COUNT is chosen from the size of
the entries read last so that a reply stays near `REPLY_BYTES`, starting small, and a batch cut
short by a lost link is halved before it is asked for again.

The lag is how old the newest entry of the last batch was when this node delivered it (entry ids
are Redis's clock in milliseconds; on one machine, or NTP-synchronised ones, it is this node's delay
behind the bus), and 0 after a read that found nothing new.
"""

from __future__ import annotations

import time

#: Bytes one XREAD reply should carry at most, about: far below any output-buffer cap a deployment
#: would set for normal clients (Redis's own default for Pub/Sub clients is an 8 MB soft limit).
REPLY_BYTES = 256 * 1024
#: The batch bounds in entries: a reply of tiny entries stops at MAX_COUNT; MIN_COUNT is the start.
MIN_COUNT = 16
MAX_COUNT = 1024


def entry_ms(entry_id: str) -> int:
    """The Redis time, in milliseconds, at which a stream entry was added (its id's first part)."""
    return int(entry_id.partition("-")[0])


class ReadPace:
    """The size of the next XREAD and the lag of the last one."""

    def __init__(self) -> None:
        self.count = MIN_COUNT
        self.lag_seconds = 0.0

    def read(self, entries: int, payload_bytes: int, newest_id: str | None) -> None:
        """After a batch of `entries` (their payloads `payload_bytes` long), the newest `newest_id`."""
        if entries == 0 or newest_id is None:
            self.lag_seconds = 0.0
            return
        self.lag_seconds = max(0.0, time.time() - entry_ms(newest_id) / 1000)
        fit = REPLY_BYTES * entries // max(1, payload_bytes)
        self.count = max(1, min(MAX_COUNT, fit))

    def cut(self) -> None:
        """The link failed during a read: it may have been cut for the size of the reply."""
        self.count = max(1, self.count // 2)
