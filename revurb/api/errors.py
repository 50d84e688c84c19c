"""HTTP API failures carry a status and a message; the edge renders them as JSON."""

from dataclasses import dataclass


@dataclass(slots=True)
class ApiError(Exception):
    """An HTTP API request that is refused: `{"error": message}` with this status."""

    status: int
    message: str


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
