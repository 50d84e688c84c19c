"""`revurb.transport.release`: the allocator is trimmed once per wave of closes, after a quiet moment;
a wave that empties the server also has its tables rebuilt smaller first."""

from __future__ import annotations

import asyncio
import sys

import uvloop

from revurb.transport.release import (
    HANDLES_SECONDS,
    QUIET_SECONDS,
    WAVE,
    Release,
    compact_after_waves,
    release_for,
    shrink,
)
from tests.support.fake_transport import ClockLoop


class Trims:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


class Owner:
    def __init__(self) -> None:
        self.compacted = 0

    def compact(self) -> None:
        self.compacted += 1


def close(release: Release, sockets: int, connections: set[object] | None = None) -> None:
    for _ in range(sockets):
        release.socket_closed(connections)


async def test_a_wave_of_closes_is_trimmed_once_after_a_quiet_moment(clock: ClockLoop) -> None:
    trims = Trims()
    release = Release(clock.as_loop(), trims)

    close(release, WAVE)
    clock.advance(QUIET_SECONDS / 2)
    close(release, 10)  # still closing: the trim waits
    clock.advance(QUIET_SECONDS)
    assert trims.count == 0
    clock.advance(QUIET_SECONDS)

    assert (trims.count, release.trims, release.closed) == (1, 1, 0)
    assert clock.pending_timers() == []


async def test_fewer_closes_than_a_wave_never_trim(clock: ClockLoop) -> None:
    trims = Trims()
    release = Release(clock.as_loop(), trims)

    close(release, WAVE - 1)
    clock.advance(10 * QUIET_SECONDS)

    assert trims.count == 0
    assert clock.pending_timers() == []


async def test_each_wave_trims_again(clock: ClockLoop) -> None:
    trims = Trims()
    release = Release(clock.as_loop(), trims)

    for _ in range(3):
        close(release, WAVE)
        clock.advance(QUIET_SECONDS)

    assert trims.count == 3


async def test_without_a_trim_given_it_finds_the_c_library_s_own(clock: ClockLoop) -> None:
    release = Release(clock.as_loop())

    close(release, WAVE)
    clock.advance(QUIET_SECONDS)

    assert release.trims == 1


async def test_one_release_per_loop(clock: ClockLoop) -> None:
    loop = clock.as_loop()
    assert release_for(loop) is release_for(loop)


async def test_a_wave_that_empties_the_server_shrinks_its_tables_before_the_trim(clock: ClockLoop) -> None:
    trims, owner = Trims(), Owner()
    compact_after_waves(owner)
    release = Release(clock.as_loop(), trims)
    connections: set[object] = set(range(5 * WAVE))
    for n in range(5 * WAVE - 10):
        connections.discard(n)
    grown = sys.getsizeof(connections)

    close(release, WAVE, connections)
    clock.advance(QUIET_SECONDS)

    assert (owner.compacted, release.compactions, trims.count) == (1, 1, 1)
    assert connections == set(range(5 * WAVE - 10, 5 * WAVE))
    assert sys.getsizeof(connections) < grown // 10


async def test_a_wave_with_more_sockets_left_than_it_closed_is_only_trimmed(clock: ClockLoop) -> None:
    trims, owner = Trims(), Owner()
    compact_after_waves(owner)
    release = Release(clock.as_loop(), trims)
    connections: set[object] = set(range(WAVE + 1))

    close(release, WAVE, connections)
    clock.advance(QUIET_SECONDS)

    assert (owner.compacted, release.compactions, trims.count) == (0, 0, 1)
    assert len(connections) == WAVE + 1


def test_owners_are_held_weakly() -> None:
    owner = Owner()
    compact_after_waves(owner)
    from revurb.transport import release as module

    assert owner in module._compactables
    del owner
    assert [o for o in module._compactables if isinstance(o, Owner)] == []


def test_shrink_keeps_every_entry() -> None:
    table = {n: str(n) for n in range(3000)}
    for n in range(2990):
        del table[n]
    grown = sys.getsizeof(table)

    shrink(table)

    assert table == {n: str(n) for n in range(2990, 3000)}
    assert sys.getsizeof(table) < grown // 10


def test_on_uvloop_the_trim_comes_once_fresh_handles_have_replaced_its_free_lists() -> None:
    loop = uvloop.new_event_loop()
    trims = Trims()
    release = Release(loop, trims)

    async def wave() -> None:
        close(release, WAVE, set())
        await asyncio.sleep(QUIET_SECONDS + HANDLES_SECONDS / 2)
        assert (release.compactions, trims.count) == (1, 0)
        await asyncio.sleep(HANDLES_SECONDS * 10)
        assert (release.compactions, trims.count) == (1, 1)
        assert release.timer is None

    try:
        loop.run_until_complete(asyncio.wait_for(wave(), 10))
    finally:
        loop.close()
