"""`revurb.transport.release`: the allocator is trimmed once per wave of closes, after a quiet moment."""

from __future__ import annotations

from revurb.transport.release import QUIET_SECONDS, WAVE, Release, release_for
from tests.support.fake_transport import ClockLoop


class Trims:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def close(release: Release, sockets: int) -> None:
    for _ in range(sockets):
        release.socket_closed()


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
