"""HTTP API failures carry a status and a message; the edge renders them as JSON."""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class ApiError(Exception):
    """An HTTP API request that is refused: `{"error": message}` with this status (and headers)."""

    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message)


def too_large(message: str) -> ApiError:
    return ApiError(413, message)
