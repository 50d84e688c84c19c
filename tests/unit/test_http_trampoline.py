"""The HTTP protocol's coroutine driver: no Task unless the coroutine suspends, same outcome either way."""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Generator
from typing import Any

import pytest

from revurb.transport.eager import drive

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


class Outcome:
    def __init__(self) -> None:
        self.calls: list[BaseException | None] = []
        self.finished = asyncio.Event()

    def __call__(self, error: BaseException | None) -> None:
        self.calls.append(error)
        self.finished.set()


@types.coroutine
def bare_yield() -> Generator[None, None, None]:
    """What `asyncio.sleep(0)` does: yield None to the Task."""
    yield


async def test_a_coroutine_that_never_suspends_runs_without_a_task() -> None:
    steps: list[str] = []
    outcome = Outcome()

    async def app() -> None:
        steps.append("ran")

    before = len(asyncio.all_tasks())
    task = drive(app(), asyncio.get_running_loop(), outcome, contextvars.copy_context())

    assert task is None
    assert len(asyncio.all_tasks()) == before
    assert steps == ["ran"]
    assert outcome.calls == [None]


async def test_an_error_before_any_suspension_is_reported_not_raised() -> None:
    outcome = Outcome()
    error = ValueError("boom")

    async def app() -> None:
        raise error

    assert drive(app(), asyncio.get_running_loop(), outcome, contextvars.copy_context()) is None
    assert outcome.calls == [error]


async def test_one_suspension_hands_the_rest_to_a_task_that_gets_the_future_result() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    seen: list[Any] = []
    outcome = Outcome()

    async def app() -> None:
        seen.append(await future)
        seen.append(asyncio.current_task())

    task = drive(app(), loop, outcome, contextvars.copy_context())

    assert task is not None
    assert outcome.calls == []
    loop.call_soon(future.set_result, "value")
    await asyncio.wait_for(task, 2)
    assert seen == ["value", task]
    assert outcome.calls == [None]


async def test_many_suspensions_of_every_kind_finish_in_order() -> None:
    loop = asyncio.get_running_loop()
    steps: list[Any] = []
    outcome = Outcome()

    async def app() -> None:
        for index in range(50):
            if index % 3 == 0:
                await bare_yield()
            elif index % 3 == 1:
                await asyncio.sleep(0)
            else:
                future: asyncio.Future[int] = loop.create_future()
                loop.call_soon(future.set_result, index)
                steps.append(await future)
        steps.append("end")

    task = drive(app(), loop, outcome, contextvars.copy_context())

    assert task is not None
    await asyncio.wait_for(task, 2)
    assert steps == [index for index in range(50) if index % 3 == 2] + ["end"]
    assert outcome.calls == [None]


async def test_a_failed_future_raises_inside_the_coroutine_which_may_handle_it() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    steps: list[str] = []
    outcome = Outcome()

    async def app() -> None:
        try:
            await future
        except KeyError:
            steps.append("handled")
        await asyncio.sleep(0)
        raise RuntimeError("after")

    task = drive(app(), loop, outcome, contextvars.copy_context())
    assert task is not None
    future.set_exception(KeyError("x"))
    await asyncio.wait_for(task, 2)

    assert steps == ["handled"]
    assert len(outcome.calls) == 1 and isinstance(outcome.calls[0], RuntimeError)
    assert str(outcome.calls[0]) == "after"


async def test_cancelling_the_task_throws_into_the_coroutine_and_propagates() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    steps: list[str] = []
    outcome = Outcome()

    async def app() -> None:
        try:
            await never
        finally:
            steps.append("cleanup")

    task = drive(app(), loop, outcome, contextvars.copy_context())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)

    assert steps == ["cleanup"]
    assert never.cancelled()
    assert len(outcome.calls) == 1 and isinstance(outcome.calls[0], asyncio.CancelledError)


async def test_a_coroutine_may_swallow_cancellation_and_finish() -> None:
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    steps: list[str] = []

    async def app() -> None:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            steps.append("cancelled")
        await asyncio.sleep(0)
        steps.append("done")

    task = drive(app(), loop, outcome, contextvars.copy_context())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(task, 2)

    assert steps == ["cancelled", "done"]
    assert outcome.calls == [None]


async def test_both_phases_run_in_the_given_context() -> None:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    seen: list[str] = []
    outcome = Outcome()

    async def app() -> None:
        VAR.set("set by app")
        await asyncio.sleep(0)
        seen.append(VAR.get())

    task = drive(app(), loop, outcome, context)
    assert task is not None
    await asyncio.wait_for(task, 2)

    assert seen == ["set by app"]
    assert VAR.get() == "unset"
    assert context[VAR] == "set by app"
    assert outcome.calls == [None]
