"""`revurb.server.fast_connection`: what is left of a message drain run by hand once it ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from revurb.server.fast_connection import _drained


def test_a_drain_run_by_hand_that_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="revurb.connection"):
        _drained(RuntimeError("boom"))
        _drained(asyncio.CancelledError())
        _drained(None)

    assert [
        (record.getMessage(), str(record.exc_info and record.exc_info[1])) for record in caplog.records
    ] == [("exception while handling a socket's messages", "boom")]
