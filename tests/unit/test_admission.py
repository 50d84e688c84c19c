"""`revurb.server.admission`: the protocol version read from a socket's query, as `parse_qs` reads it."""

from __future__ import annotations

from urllib.parse import parse_qs

from hypothesis import given
from hypothesis import strategies as st

from revurb.server.admission import _protocol_version, protocol_error
from revurb.wire.codes import ErrorCode

QUERY_PARTS = st.lists(
    st.sampled_from(
        ["protocol", "client", "version", "", "=", "7", "x", "protocol=", "%37", "+", "&", "a b"]
    ),
    max_size=12,
)


@given(QUERY_PARTS)
def test_the_version_is_the_one_parse_qs_reads(parts: list[str]) -> None:
    query = "".join(parts)
    versions = parse_qs(query).get("protocol")
    assert _protocol_version(query) == (versions[0] if versions else None)


def test_the_usual_queries() -> None:
    assert protocol_error(b"protocol=7&client=js&version=8.4.0&flash=false") is None
    assert protocol_error(b"client=js") is None  # no version: accepted, as Reverb and Soketi do
    assert protocol_error(b"protocol=&protocol=7") is None  # blank values are skipped
    unsupported = protocol_error(b"protocol=4")
    assert unsupported is not None and unsupported.code == ErrorCode.UNSUPPORTED_PROTOCOL
    malformed = protocol_error(b"protocol=seven")
    assert malformed is not None and malformed.code == ErrorCode.INVALID_VERSION_FORMAT
