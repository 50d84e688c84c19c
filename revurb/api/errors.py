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
