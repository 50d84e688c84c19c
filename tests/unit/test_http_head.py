"""The response head the HTTP protocol writes: framing headers, connection close, header validation."""

from __future__ import annotations

import types
from typing import Any

import pytest

from revurb.transport.http_request import HttpRequest


def request(method: str = "GET", keep_alive: bool = True) -> HttpRequest:
    protocol: Any = types.SimpleNamespace(
        access_log=False, server_state=types.SimpleNamespace(default_headers=[(b"date", b"Fri, 27 Nov 2026")])
    )
    return HttpRequest(protocol, method, "1.1", b"/", "/", b"", [], keep_alive)


def test_a_head_with_content_length_keeps_the_connection_open() -> None:
    head = request()._head(200, [(b"Content-Type", b"application/json"), (b"content-length", b"2")])
    assert head == (
        b"HTTP/1.1 200 OK\r\ndate: Fri, 27 Nov 2026\r\ncontent-type: application/json\r\n"
        b"content-length: 2\r\n\r\n"
    )


def test_without_content_length_the_body_is_chunked_and_close_is_announced() -> None:
    cycle = request(keep_alive=False)
    head = cycle._head(404, [])
    assert head == (
        b"HTTP/1.1 404 Not Found\r\ndate: Fri, 27 Nov 2026\r\nconnection: close\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    assert cycle.chunked


def test_head_and_204_responses_get_no_body_framing() -> None:
    assert request("HEAD")._head(200, []) == b"HTTP/1.1 200 OK\r\ndate: Fri, 27 Nov 2026\r\n\r\n"
    assert request()._head(204, []) == b"HTTP/1.1 204 No Content\r\ndate: Fri, 27 Nov 2026\r\n\r\n"


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ((b"x-evil", b"a\r\nset-cookie: b"), "Invalid HTTP header value."),
        ((b"x-evil\r\nset-cookie", b"b"), "Invalid HTTP header name."),
        ((b"bad:name", b"b"), "Invalid HTTP header name."),
        ((b"x-nul", b"a\x00"), "Invalid HTTP header value."),
    ],
)
def test_header_injection_is_refused(header: tuple[bytes, bytes], error: str) -> None:
    with pytest.raises(RuntimeError, match=error):
        request()._head(200, [(b"content-length", b"0"), header])
