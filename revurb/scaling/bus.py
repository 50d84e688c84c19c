"""The bus as entries of a Redis stream: how a message is written, read back, and read only once.

An entry has one field holding one line of JSON header, a newline, and the already-encoded
frame, so a frame is encoded once and never re-encoded. Producers number their messages
(`node`, `seq`); a consumer drops a message whose number it has already seen from that producer
(a pipeline re-sent after a fault, or history replayed after Redis lost its data). Membership
changes are written by the Lua scripts and carry no number: they are never re-sent, and the
entry id is their version.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from revurb.scaling.base import BusMessage, Version
from revurb.wire import frames

logger = logging.getLogger("revurb.scaling")

#: The stream field that holds an entry's payload.
FIELD = "m"
#: How long a consumer remembers a producer it no longer hears from.
FORGET_PRODUCER_SECONDS = 3600.0


def encode(header: dict[str, Any], frame: str) -> str:
    return frames.dumps(header) + "\n" + frame


def parse_id(entry_id: str) -> Version:
    """A stream id `ms-seq` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def format_id(version: Version) -> str:
    return f"{version[0]}-{version[1]}"


def decode(entry_id: str, payload: str) -> BusMessage:
    """The message of one entry; membership changes get the entry id as their version."""
    header, _, frame = payload.partition("\n")
    message: BusMessage = frames.loads(header)
    if frame:
        message["frame"] = frame
    if message.get("type") == "member":
        message["version"] = parse_id(entry_id)
    return message


class Dedupe:
    """What this node has already delivered, per producer."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        #: The highest of this node's own messages delivered to its sockets (from the bus, or at
        #: once while Redis was known to be down).
        self.own_delivered = 0
        #: producer -> (highest message number delivered, when it was last heard)
        self._seen: dict[str, tuple[int, float]] = {}

    def fresh(self, message: BusMessage) -> bool:
        """True the first time a numbered message is seen; unnumbered ones always are."""
        seq = message.get("seq")
        if seq is None:
            return True
        node = message.get("node", "")
        if node == self.node_id:
            if seq <= self.own_delivered:
                return False
            self.own_delivered = seq
            return True
        seen = self._seen.get(node)
        if seen is not None and seq <= seen[0]:
            return False
        self._seen[node] = (seq, time.monotonic())
        return True

    def forget_silent(self) -> None:
        """Drop producers not heard for a long time (nodes come and go with new ids)."""
        cutoff = time.monotonic() - FORGET_PRODUCER_SECONDS
        for node in [node for node, (_, heard) in self._seen.items() if heard < cutoff]:
            del self._seen[node]
