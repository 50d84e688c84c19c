"""One webhook request: Pusher's body and headers, signed with the app's secret."""

from __future__ import annotations

import time
from collections.abc import Sequence

from revurb.apps import App, Webhook
from revurb.scaling.base import WebhookEvent
from revurb.wire import auth, frames

#: The ids of the request's events, in body order, comma-separated: the same on every retry and
#: on a take-over by another node, so a receiver can drop what it has already seen.
ID_HEADER = "X-Revurb-Webhook-Id"
KEY_HEADER = "X-Pusher-Key"
SIGNATURE_HEADER = "X-Pusher-Signature"
CONTENT_TYPE = "application/json"


def build(
    app: App, hook: Webhook, ids: Sequence[str], events: Sequence[WebhookEvent]
) -> tuple[str, dict[str, str]]:
    """The body (`{"time_ms": ..., "events": [...]}`) and headers of a request carrying `events`.

    The configured `headers` go first, so they cannot replace the signature or the key."""
    body = frames.dumps({"time_ms": int(time.time() * 1000), "events": list(events)})
    headers = dict(hook.headers)
    headers.update(
        {
            "Content-Type": CONTENT_TYPE,
            KEY_HEADER: app.key,
            SIGNATURE_HEADER: auth.sign(app.secret, body),
            ID_HEADER: ",".join(ids),
        }
    )
    return body, headers
