"""`WriteCoalescer`: what a round of loop callbacks wrote leaves once the round is over, answers first."""

from __future__ import annotations

import asyncio

from revurb.transport.coalescer import WriteCoalescer


class Recorder:
    """A `Flushable` that notes when it was flushed, and may add someone to the coalescer then."""

    def __init__(
        self, name: str, flushed: list[str], then: tuple[WriteCoalescer, Recorder] | None = None
    ) -> None:
        self.name = name
        self.flushed = flushed
        self.then = then

    def flush(self) -> None:
        self.flushed.append(self.name)
        if self.then is not None:
            coalescer, other = self.then
            self.then = None
            coalescer.add_answer(other)


async def test_answers_are_flushed_before_frames_and_all_in_the_next_round() -> None:
    coalescer = WriteCoalescer(asyncio.get_running_loop())
    flushed: list[str] = []

    coalescer.add(Recorder("frames-1", flushed))
    coalescer.add_answer(Recorder("answer-1", flushed))
    coalescer.add(Recorder("frames-2", flushed))
    coalescer.add_answer(Recorder("answer-2", flushed))
    assert flushed == []
    await asyncio.sleep(0)

    assert flushed == ["answer-1", "answer-2", "frames-1", "frames-2"]


async def test_an_answer_added_while_flushing_is_flushed_in_the_next_round() -> None:
    coalescer = WriteCoalescer(asyncio.get_running_loop())
    flushed: list[str] = []
    late = Recorder("late answer", flushed)

    coalescer.add_answer(Recorder("answer", flushed, then=(coalescer, late)))
    coalescer.add(Recorder("frames", flushed))
    await asyncio.sleep(0)
    assert flushed == ["answer", "frames"]
    await asyncio.sleep(0)

    assert flushed == ["answer", "frames", "late answer"]
