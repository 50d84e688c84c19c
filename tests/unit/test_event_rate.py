"""The per-app event rate of the HTTP API, on one process: a one-second window, refused once full."""

from __future__ import annotations

from revurb.scaling.event_rate import EventRate


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.25

    def __call__(self) -> float:
        return self.now


async def test_events_are_counted_up_to_the_limit_in_one_second() -> None:
    clock = Clock()
    rate = EventRate(clock)

    taken = [await rate.take("app", points, 10) for points in (3, 3, 3, 2, 1)]

    assert taken == [True, True, True, False, True]


async def test_a_refused_request_counts_nothing_and_apps_are_apart() -> None:
    clock = Clock()
    rate = EventRate(clock)
    assert await rate.take("a", 10, 10)

    assert not await rate.take("a", 1, 10)
    assert not await rate.take("a", 1, 10)
    assert await rate.take("b", 10, 10)


async def test_the_next_second_starts_from_nothing() -> None:
    clock = Clock()
    rate = EventRate(clock)
    assert await rate.take("app", 10, 10)
    clock.now = 1_000.99
    assert not await rate.take("app", 1, 10)

    clock.now = 1_001.0

    assert await rate.take("app", 10, 10)
    assert not await rate.take("app", 1, 10)


async def test_a_request_larger_than_the_limit_is_never_taken() -> None:
    assert not await EventRate(Clock()).take("app", 11, 10)
