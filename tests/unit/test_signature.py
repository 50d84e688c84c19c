"""`revurb.api.signature.verify` against an independent signer, with hypothesis corrupting requests."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from revurb.api.errors import ApiError
from revurb.api.signature import verify
from revurb.apps import App

APP = App(id="1001", key="app-key", secret="app-secret")
NOW = 1_800_000_000
WINDOW = 600
RESERVED = {"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"}


# The independent signer: the Pusher HTTP API reference, written out with hmac and hashlib only.


def pusher_sign(secret: str, method: str, path: str, params: dict[str, str]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted((k.lower(), v) for k, v in params.items()))
    string = f"{method}\n{path}\n{query}"
    return hmac.new(secret.encode(), string.encode(), hashlib.sha256).hexdigest()


@dataclass
class SignedRequest:
    method: str
    path: str
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    #: The paths the server accepts a signature over (two behind a path prefix).
    accepted: list[str] = field(default_factory=list)


def signed(
    method: str,
    path: str,
    body: bytes,
    extra: dict[str, str],
    *,
    key: str = APP.key,
    secret: str = APP.secret,
    timestamp: int = NOW,
    md5_when_empty: bool = False,
) -> SignedRequest:
    params = dict(extra)
    params.update({"auth_key": key, "auth_timestamp": str(timestamp), "auth_version": "1.0"})
    if body or md5_when_empty:
        params["body_md5"] = hashlib.md5(body).hexdigest()
    params["auth_signature"] = pusher_sign(secret, method, path, params)
    return SignedRequest(method, path, body, params)


def check(request: SignedRequest, paths: list[str] | None = None) -> ApiError | None:
    try:
        accepted = paths or request.accepted or [request.path]
        verify(APP, request.method, accepted, request.params, request.body, now=NOW)
    except ApiError as error:
        return error
    return None


# Fixed examples


def test_pusher_documented_example_is_accepted() -> None:
    """The worked example of Pusher's HTTP API reference (its key, secret, body and signature)."""
    app = App(id="3", key="278d425bdf160c739803", secret="7ad3773142a6692b25b8")
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    params = {
        "auth_key": "278d425bdf160c739803",
        "auth_timestamp": "1353088179",
        "auth_version": "1.0",
        "body_md5": "ec365a775a4cd0599faeb73354201b6f",
        "auth_signature": "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
    }
    verify(app, "POST", ["/apps/3/events"], params, body, now=1353088179 + 5)
    with pytest.raises(ApiError) as refused:
        verify(app, "POST", ["/apps/3/events"], params, body + b" ", now=1353088179 + 5)
    assert (refused.value.status, refused.value.message) == (
        401,
        "Invalid body_md5: it does not match the request body",
    )


@pytest.mark.parametrize("missing", ["auth_key", "auth_timestamp", "auth_version", "auth_signature"])
def test_each_missing_auth_parameter_is_named(missing: str) -> None:
    request = signed("GET", "/apps/1001/channels", b"", {})
    del request.params[missing]
    error = check(request)
    assert error is not None
    assert (error.status, error.message) == (401, f"Missing authentication parameter: {missing}")


def test_body_without_body_md5_is_refused() -> None:
    request = signed("POST", "/apps/1001/events", b"{}", {})
    del request.params["body_md5"]
    request.params["auth_signature"] = pusher_sign(
        APP.secret, "POST", request.path, {k: v for k, v in request.params.items() if k != "auth_signature"}
    )
    error = check(request)
    assert error is not None
    assert (error.status, error.message) == (401, "Missing authentication parameter: body_md5")


def test_timestamp_window_edges() -> None:
    for shift in (-WINDOW, WINDOW):
        assert check(signed("GET", "/apps/1001/connections", b"", {}, timestamp=NOW + shift)) is None
    for shift in (-WINDOW - 1, WINDOW + 1):
        error = check(signed("GET", "/apps/1001/connections", b"", {}, timestamp=NOW + shift))
        assert error is not None
        assert (error.status, error.message) == (
            401,
            "Timestamp expired: auth_timestamp is over 600 s from server time",
        )


@pytest.mark.parametrize("timestamp", ["yesterday", " 1800000000", "+1800000000", "1_800_000_000", "\u0661"])
def test_timestamp_that_is_not_plain_digits_is_refused(timestamp: str) -> None:
    request = signed("GET", "/apps/1001/connections", b"", {})
    request.params["auth_timestamp"] = timestamp
    assert (check(request) or ApiError(0, "")).message == (
        "Invalid auth_timestamp: expected whole seconds since the epoch"
    )


def test_other_auth_version_is_refused() -> None:
    request = signed("GET", "/apps/1001/connections", b"", {})
    request.params["auth_version"] = "2.0"
    assert (check(request) or ApiError(0, "")).message == "Unsupported auth_version: only 1.0 is supported"


def test_signature_over_either_accepted_path() -> None:
    """Behind a prefix the server accepts the path without the prefix and the full one, nothing else."""
    paths = ["/apps/1001/events", "/ws/apps/1001/events"]
    assert check(signed("POST", paths[0], b"{}", {}), paths) is None
    assert check(signed("POST", paths[1], b"{}", {}), paths) is None
    error = check(signed("POST", "/apps/1001/batch_events", b"{}", {}), paths)
    assert error is not None and error.message.startswith("Invalid signature: expected the HMAC-SHA256 of ")


def test_wrong_signature_message_shows_the_string_to_sign() -> None:
    request = signed("GET", "/apps/1001/channels", b"", {"filter_by_prefix": "presence-"}, secret="nope")
    error = check(request)
    assert error is not None
    expected = (
        "GET\n/apps/1001/channels\nauth_key=app-key&auth_timestamp=1800000000&auth_version=1.0"
        "&filter_by_prefix=presence-"
    )
    assert (error.status, error.message) == (
        401,
        f"Invalid signature: expected the HMAC-SHA256 of {expected!r}",
    )


# The property: exactly the correctly signed, fresh requests are accepted.

CORRUPTIONS = (
    "none",
    "fresh_shift",
    "wrong_secret",
    "wrong_key",
    "stale",
    "future",
    "tampered_body",
    "tampered_param",
    "tampered_method",
    "tampered_path",
    "dropped_param",
    "added_param",
    "tampered_signature",
)

param_keys = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda k: k not in RESERVED
)
param_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
paths = st.sampled_from(
    [
        "/apps/1001/events",
        "/apps/1001/batch_events",
        "/apps/1001/channels",
        "/apps/1001/channels/presence-room",
        "/apps/1001/channels/private-x/users",
        "/apps/1001/connections",
        "/users/42/terminate_connections",
    ]
)


@st.composite
def requests_and_corruptions(draw: st.DrawFn) -> tuple[SignedRequest, str]:
    method = draw(st.sampled_from(["GET", "POST"]))
    path = draw(paths)
    body = draw(st.binary(max_size=64)) if method == "POST" else b""
    extra = draw(st.dictionaries(param_keys, param_values, max_size=4))
    corruption = draw(st.sampled_from(CORRUPTIONS))
    md5_when_empty = draw(st.booleans())
    timestamp = NOW
    key, secret = APP.key, APP.secret
    if corruption == "fresh_shift":
        timestamp = NOW + draw(st.integers(-WINDOW, WINDOW))
    elif corruption == "stale":
        timestamp = NOW - draw(st.integers(WINDOW + 1, 10**9))
    elif corruption == "future":
        timestamp = NOW + draw(st.integers(WINDOW + 1, 10**9))
    elif corruption == "wrong_secret":
        secret = draw(st.text(min_size=1, max_size=20).filter(lambda s: s != APP.secret))
    elif corruption == "wrong_key":
        key = draw(st.text(min_size=0, max_size=20).filter(lambda k: k != APP.key))
    # Behind a proxy that keeps a prefix the server accepts either path; the SDK signs one of them.
    accepted = [path, f"/ws{path}"] if draw(st.booleans()) else [path]
    request = signed(
        method,
        draw(st.sampled_from(accepted)),
        body,
        extra,
        key=key,
        secret=secret,
        timestamp=timestamp,
        md5_when_empty=md5_when_empty,
    )
    request.accepted = accepted
    params = request.params
    if corruption == "tampered_body":
        request.body = draw(st.binary(max_size=64).filter(lambda b: b != body))
    elif corruption == "tampered_param":
        name = draw(st.sampled_from(sorted(params)))
        assume(name != "auth_signature")
        params[name] = params[name] + draw(st.text(min_size=1, max_size=3))
    elif corruption == "tampered_method":
        request.method = "POST" if method == "GET" else "GET"
    elif corruption == "tampered_path":
        suffix = draw(st.sampled_from(["x", "/", "/users"]))
        request.accepted = [accepted_path + suffix for accepted_path in accepted]
    elif corruption == "dropped_param":
        del params[draw(st.sampled_from(sorted(params)))]
    elif corruption == "added_param":
        name = draw(param_keys.filter(lambda k: k not in params))
        params[name] = draw(param_values)
    elif corruption == "tampered_signature":
        position = draw(st.integers(0, 63))
        old = params["auth_signature"]
        flipped = "0" if old[position] != "0" else "1"
        params["auth_signature"] = old[:position] + flipped + old[position + 1 :]
    return request, corruption


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(requests_and_corruptions())
def test_exactly_the_correctly_signed_fresh_requests_are_accepted(case: tuple[SignedRequest, str]) -> None:
    request, corruption = case
    error = check(request)
    if corruption in ("none", "fresh_shift"):
        assert error is None, f"refused a valid request: {error}"
        return
    assert error is not None, f"accepted a request with {corruption}"
    assert error.status == 401
    expected_start = {
        "wrong_secret": "Invalid signature",
        "wrong_key": "Invalid auth_key",
        "stale": "Timestamp expired",
        "future": "Timestamp expired",
        "tampered_method": "Invalid signature",
        "tampered_path": "Invalid signature",
        "added_param": "Invalid signature",
        "tampered_signature": "Invalid signature",
    }.get(corruption)
    if expected_start is not None:
        assert error.message.startswith(expected_start), error.message
