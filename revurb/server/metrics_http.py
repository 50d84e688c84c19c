"""The metrics listener on its own port (`REVURB_METRICS_PORT`, 9601 by default), and the bearer
token check shared with `{path}/metrics` on the main port.

A listener of a few lines on asyncio, in the server's own event loop: a scrape reads the counters
between two events, never while they change. The `--workers` supervisor, which has no event loop,
runs the same listener in a thread of its own over the workers' files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections.abc import Callable

from revurb.server.metrics import CONTENT_TYPE

logger = logging.getLogger("revurb.server.metrics")

METRICS_PATH = "/metrics"
#: Longest request head a scrape may send, and how long it may take to send it.
_HEAD_LIMIT = 16_384
_HEAD_SECONDS = 5.0

Source = Callable[[], bytes]


def authorized(header: str | None, token: str | None) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; anything goes without a token."""
    if token is None:
        return True
    if header is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


def _response(status: str, body: bytes, content_type: str = CONTENT_TYPE) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def answer(head: bytes, token: str | None, source: Source) -> bytes:
    """The whole response to one request head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", b"GET /metrics\n", "text/plain")
    if parts[1].split("?", 1)[0] != METRICS_PATH:
        return _response("404 Not Found", b"GET /metrics\n", "text/plain")
    auth = next(
        (line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("authorization:")),
        None,
    )
    if not authorized(auth, token):
        return _response("401 Unauthorized", b"a bearer token is required\n", "text/plain")
    body = source()
    return _response("200 OK", b"" if parts[0] == "HEAD" else body)


class MetricsListener:
    """`GET /metrics` on its own port, served from the running event loop."""

    def __init__(self, host: str, port: int, token: str | None, source: Source) -> None:
        self.host, self.port, self.token, self.source = host, port, token, source
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        logger.info("metrics on http://%s:%d%s", self.host, self.port, METRICS_PATH)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_SECONDS)
            if len(head) <= _HEAD_LIMIT:
                writer.write(answer(head, self.token, self.source))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
            logger.debug("metrics request dropped: %r", error)
        except Exception:
            logger.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class MetricsThread:
    """The same listener in a thread with its own loop, for a process that runs no loop."""

    def __init__(self, listener: MetricsListener) -> None:
        self.listener = listener
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="revurb-metrics", daemon=True)
        self._started = threading.Event()
        self._failure: OSError | None = None

    def start(self) -> None:
        """Listen, or raise the `OSError` that prevented it (a port in use)."""
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.listener.start())
        except OSError as error:
            self._failure = error
            return
        finally:
            self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self.listener.stop(), self._loop)
        future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
