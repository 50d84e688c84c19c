"""Counts of the webhook sender, read by metrics on a scrape (never on the delivery path)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class WebhookStats:
    """Requests sent (2xx), retried (each failed attempt followed by another) and failed (given up
    after the retry horizon); events dropped (queue bound); events waiting now."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0
