"""HTTP API failures carry a status and a message; the edge renders them as JSON."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette import status


@dataclass(slots=True)
class ApiError(Exception):
    """An HTTP API request that is refused: `{"error": message}` with this status (and headers)."""

    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def bad_request(message: str) -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, message)


def unauthorized(message: str) -> ApiError:
    return ApiError(status.HTTP_401_UNAUTHORIZED, message)


def not_found(message: str) -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, message)


def method_not_allowed(method: str, allowed: str) -> ApiError:
    message = f"Method {method} is not allowed here: use {allowed}"
    return ApiError(status.HTTP_405_METHOD_NOT_ALLOWED, message, {"Allow": allowed})


def too_large(message: str) -> ApiError:
    return ApiError(status.HTTP_413_CONTENT_TOO_LARGE, message)


def draining() -> ApiError:
    return ApiError(status.HTTP_503_SERVICE_UNAVAILABLE, "Server is shutting down")


#: Seconds until the next window of the event rate limit (it is one second long).
RETRY_AFTER_SECONDS = 1


def too_many_events(limit: int) -> ApiError:
    """Over the app's `max_backend_events_per_sec` (429), with the headers Soketi sends."""
    headers = {
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
    }
    return ApiError(status.HTTP_429_TOO_MANY_REQUESTS, "Too many requests", headers)
