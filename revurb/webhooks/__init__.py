"""Webhooks like Pusher's: events taken from the backend, batched, signed, sent and retried."""

from revurb.webhooks.service import Webhooks
from revurb.webhooks.stats import WebhookStats

__all__ = ["WebhookStats", "Webhooks"]
