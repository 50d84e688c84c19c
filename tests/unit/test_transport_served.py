"""What the transport reads once per server: the app's hook and limits, the connection's addresses."""

from __future__ import annotations

import asyncio
import logging

from revurb.transport.addresses import address, local_address, remote_address
from revurb.transport.coalescer import coalescer_for
from revurb.transport.hook import DEFAULT_LIMITS
from revurb.transport.served import MAX_HEADER_BYTES, served
from tests.support.fake_apps import EchoApp
from tests.support.fake_transport import LOCAL, PEER, FakeTransport
from tests.support.transport_fixtures import load_config


def test_addresses_are_host_and_port_as_uvicorn_gives_them() -> None:
    assert address(("127.0.0.1", 8080)) == ("127.0.0.1", 8080)
    assert address(("::1", 8080, 0, 0)) == ("::1", 8080)  # IPv6: flow info and scope dropped
    assert address(["10.0.0.1", "443"]) == ("10.0.0.1", 443)
    assert address("/run/revurb.sock") is None  # a Unix socket
    assert address(None) is None
    transport = FakeTransport()
    assert (local_address(transport), remote_address(transport)) == (LOCAL, PEER)


def test_a_config_is_read_once_and_another_config_again() -> None:
    first = load_config(EchoApp())
    second = load_config(EchoApp(), h11_max_incomplete_event_size=1024)

    shared = served(first)

    assert served(first) is shared
    assert (shared.fast_path, shared.eager, shared.trusted) == (None, False, None)
    assert shared.limits == DEFAULT_LIMITS
    assert shared.header_limit == MAX_HEADER_BYTES
    assert shared.asgi_version == "3.0"
    other = served(second)
    assert other is not shared and other.header_limit == 1024
    assert served(first) is not other and served(first).app is first.loaded_app


def test_requests_are_logged_when_the_access_logger_would_write_them_at_info() -> None:
    access = logging.getLogger("uvicorn.access")
    saved = (access.handlers[:], access.level, access.propagate)
    try:
        access.handlers, access.propagate = [logging.NullHandler()], False
        access.setLevel(logging.INFO)
        assert served(load_config(EchoApp())).access_log is True
        access.setLevel(logging.WARNING)  # `revurb start`: the logger is there, requests are not logged
        assert served(load_config(EchoApp())).access_log is False
        access.handlers = []
        access.setLevel(logging.INFO)
        assert served(load_config(EchoApp())).access_log is False
    finally:
        access.handlers, access.propagate = saved[0], saved[2]
        access.setLevel(saved[1])


async def test_the_coalescer_of_a_loop_is_the_same_one_every_time() -> None:
    loop = asyncio.get_running_loop()
    other = asyncio.new_event_loop()
    try:
        mine = coalescer_for(loop)
        assert coalescer_for(loop) is mine
        theirs = coalescer_for(other)
        assert theirs is not mine and theirs.loop is other
        assert coalescer_for(loop) is mine
    finally:
        other.close()
