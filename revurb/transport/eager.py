"""Running an ASGI app's coroutine without a Task until it first suspends (3.12's eager tasks, by hand).

A request to an app that never really suspends once its body is read (Revurb's API on the memory
backend) does not need a Task; `drive` creates one only when the coroutine yields.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

Done = Callable[[BaseException | None], None]


# The coroutine driver


def drive(
    coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop, done: Done, context: contextvars.Context
) -> asyncio.Task[None] | None:
    """Run `coro` in `context` until it suspends; only then finish it in a Task. `done` gets its outcome."""
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        done(None)
        return None
    except (Exception, asyncio.CancelledError) as error:
        done(error)
        return None
    return loop.create_task(run_in_task(_Resume(coro, yielded), done), context=context)


class _Resume:
    """Gives the Task what `coro` yielded (a future, or None for a bare yield), then goes on with `coro`.

    The Task waits on that future and resumes us exactly as it would resume `coro` itself: by sending
    None (the future's `__await__` inside `coro` reads the result) or throwing its cancellation.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:
                try:
                    yielded = coro.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def run_in_task(work: Awaitable[Any], done: Done) -> None:
    """Await `work` (in the Task running this); `done` gets its outcome, as with `drive`."""
    try:
        await work
    except asyncio.CancelledError as error:
        done(error)
        raise
    except Exception as error:
        done(error)
    else:
        done(None)
