"""Fixtures of the unit tests: the transport's protocol classes run on a fake transport and clock."""

from tests.support.transport_fixtures import clock

__all__ = ["clock"]
