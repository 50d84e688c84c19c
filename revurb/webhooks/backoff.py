"""How long a failed webhook request waits before the next try: exponential, capped, with jitter."""

from __future__ import annotations

import random

#: The first retry waits between half of this and this many seconds; each next one twice as long.
BASE_SECONDS = 0.5
#: No wait is longer than this, so a receiver that comes back gets its events soon.
CAP_SECONDS = 10.0
#: Past this many doublings the cap holds anyway (and the number stays small).
_MAX_DOUBLINGS = 16


def delay(attempt: int, rng: random.Random) -> float:
    """The wait after failed attempt number `attempt` (0 for the first): "equal jitter", so
    receivers that failed together do not all retry in the same instant, yet none waits long."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * (1 << min(attempt, _MAX_DOUBLINGS)))
    return ceiling / 2 + rng.random() * ceiling / 2
