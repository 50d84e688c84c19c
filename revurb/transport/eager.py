"""Running an ASGI app's coroutine without a Task until it first suspends (3.12's eager tasks, by hand).

A request to Revurb's API with the memory backend never really suspends once its body is read, so
creating a Task for it is pure overhead; `drive` creates one only when the coroutine yields.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revurb.server.app import Revurb

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


def eager_safe(app: Any) -> bool:
    """Whether `app` (under uvicorn's wrappers) may run outside a Task until it first suspends.

    Code that needs `asyncio.current_task()` (`asyncio.timeout`, anyio, Redis clients) fails there, so
    only Revurb with the memory backend and configured apps qualifies; any other app gets a Task.
    """
    from revurb.apps import ConfigAppProvider
    from revurb.scaling.memory import MemoryBackend

    revurb = served_revurb(app)
    return (
        revurb is not None
        and isinstance(revurb.backend, MemoryBackend)
        and type(revurb.provider) is ConfigAppProvider
    )


def served_revurb(app: Any) -> Revurb | None:
    """The Revurb app uvicorn serves, seen through uvicorn's proxy-headers wrapper; else None.

    Any other wrapper (an embedding host's middleware, uvicorn's trace logger) must see every request,
    so then there is no Revurb to call directly.
    """
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from revurb.server.app import Revurb

    if isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    return app if isinstance(app, Revurb) else None


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
