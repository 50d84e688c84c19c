"""What every dashboard answer shares: the security headers, JSON answers and refusals, the checks
of a posted JSON body.

Every answer carries a strict Content-Security-Policy (scripts and styles from this server only,
nothing inline, no framing). Changes (login, logout, a test event) must be JSON posts from this
origin: a cross-site form can send neither, and the session cookie is `SameSite=Strict` besides.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from revurb.wire import frames

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: Largest JSON body a dashboard post may have (a test event's data is limited by the app besides).
MAX_BODY = 64 * 1024


def secured(response: Response, cache: str = "no-store") -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(frames.dumps_bytes(payload), status, headers, media_type="application/json")
    return secured(response)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json({"error": message}, status, headers)


class Refused(Exception):
    """A request the dashboard turns away, as its JSON answer."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def json_body(request: Request) -> dict[str, Any]:
    """A same-origin JSON post's body, or the refusal."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Refused(error(403, "Cross-origin requests are refused"))
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Refused(error(415, "Send JSON (Content-Type: application/json)"))
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Refused(error(413, f"The body is larger than {MAX_BODY} bytes"))
    try:
        payload = frames.loads(body)
    except frames.JSONDecodeError:
        raise Refused(error(400, "The body is not valid JSON")) from None
    if not isinstance(payload, dict):
        raise Refused(error(400, "The body must be a JSON object"))
    return payload
