"""Async wrapper around ``driver.mjs``: real Pusher clients in one Node process, for pytest."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

CLIENTS_DIR = Path(__file__).resolve().parent
DRIVER = CLIENTS_DIR / "driver.mjs"
REQUIRED_MODULES = ("pusher-js", "laravel-echo", "pusher")

Message = dict[str, Any]
Pattern = Callable[[Message], bool] | Mapping[str, Any]


class ServerLike(Protocol):
    """What the driver needs to know about a server under test (the ``server`` fixture's object)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def app_id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def secret(self) -> str: ...


class NodeUnavailable(RuntimeError):
    """Node or the client packages are not installed, so the real-client tests cannot run."""


def find_node() -> str:
    """Return the node executable, or raise NodeUnavailable saying how to get the harness ready."""
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None:
        raise NodeUnavailable("node is not on PATH; the pusher-js/laravel-echo tests need Node >= 20")
    modules = CLIENTS_DIR / "node_modules"
    missing = [m for m in REQUIRED_MODULES if not (modules / m / "package.json").is_file()]
    if missing:
        raise NodeUnavailable(f"{modules} lacks {', '.join(missing)}; run `npm ci --prefix tests/clients`")
    return node


def matches(pattern: Pattern, message: Message) -> bool:
    """A dict pattern matches when every key it names is present with an equal value."""
    if callable(pattern):
        return bool(pattern(message))
    return all(key in message and message[key] == value for key, value in pattern.items())


class NodeDriver:
    """One ``node driver.mjs``: send commands with ``call``, await reports with ``expect``."""

    def __init__(self, *, debug: bool = False) -> None:
        self.messages: list[Message] = []  # reports not yet consumed by expect()
        self.history: list[Message] = []  # every report, for failure messages
        self.stderr: deque[str] = deque(maxlen=200)
        self._debug = debug or bool(os.environ.get("REVURB_DRIVER_DEBUG"))
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Future[Message] | None = None

    async def start(self, timeout: float = 15.0) -> None:
        node = find_node()
        env = dict(os.environ)
        if self._debug:
            env["REVURB_DRIVER_DEBUG"] = "1"
        self._ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(DRIVER),
            cwd=CLIENTS_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        self._spawn(self._read_stdout(self._proc))
        self._spawn(self._read_stderr(self._proc))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except (TimeoutError, ConnectionError) as exc:
            await self.close()
            # Node is there but the driver is broken: that is a failure, never a skip.
            raise RuntimeError(f"driver.mjs did not start: {exc!r}\n{self._stderr_tail()}") from exc

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr.append(f"[stdout, not JSON] {line.decode(errors='replace').rstrip()}")
                continue
            self._dispatch(message)
        # The process is gone: nothing pending will ever be answered.
        await proc.wait()
        gone = ConnectionError(f"driver.mjs exited (code {proc.returncode})\n{self._stderr_tail()}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(gone)
        self._arrived.set()

    def _dispatch(self, message: Message) -> None:
        if self._debug:
            print("driver <-", json.dumps(message))
        if message.get("type") == "reply":
            reply_id = message.get("id")
            future = self._pending.pop(reply_id, None) if isinstance(reply_id, int) else None
            if future is not None and not future.done():
                future.set_result(message)
            return
        if message.get("type") == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)
            return
        self.history.append(message)
        self.messages.append(message)
        self._arrived.set()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.stderr.append(text)
            if self._debug:
                print("driver stderr:", text)

    def _stderr_tail(self) -> str:
        return "\n".join(self.stderr) or "(no stderr)"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def call(self, cmd: Mapping[str, Any], timeout: float = 5.0) -> Message:
        """Send one command and return the driver's reply (``ok`` may be False; check it)."""
        if not self.running:
            raise ConnectionError(f"driver.mjs is not running\n{self._stderr_tail()}")
        assert self._proc is not None and self._proc.stdin is not None
        command_id = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        payload = {**cmd, "id": command_id}
        if self._debug:
            print("driver ->", json.dumps(payload))
        self._proc.stdin.write(json.dumps(payload).encode() + b"\n")
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            detail = f"no reply to {payload} within {timeout}s\n{self._stderr_tail()}"
            raise AssertionError(detail) from None
        finally:
            self._pending.pop(command_id, None)

    async def ok(self, cmd: Mapping[str, Any], timeout: float = 5.0) -> Message:
        """Like ``call``, but fail the test unless the reply is ok."""
        reply = await self.call(cmd, timeout)
        assert reply.get("ok") is True, f"driver refused {dict(cmd)}: {reply}\n{self._recent()}"
        return reply

    async def connect(self, server: ServerLike, client: str, *, echo: bool = False, **fields: Any) -> str:
        """Open a pusher-js (or laravel-echo) client on ``server``; return its socket id."""
        cmd = {
            "cmd": "echo" if echo else "connect",
            "client": client,
            "key": server.key,
            "secret": server.secret,
            "host": server.host,
            "port": server.port,
            "path": server.path,
            "tls": False,
            "masterKey": None,
            "presence": None,
            "user": None,
            "wait": True,
            **fields,
        }
        reply = await self.ok(cmd, timeout=6.0)
        socket_id = reply.get("socket_id")
        return socket_id if isinstance(socket_id, str) else ""

    async def subscribe(self, client: str, channel: str, **fields: Any) -> Message:
        """Subscribe and wait for the outcome: ``{"subscribed": bool, "error"?: ...}``."""
        cmd = {"cmd": "subscribe", "client": client, "channel": channel, "wait": True, **fields}
        return await self.ok(cmd, timeout=6.0)

    async def rest(
        self, server: ServerLike, call: str, *args: Any, master_key: str | None = None, tls: bool = False
    ) -> Message:
        """Call the Node ``pusher`` SDK on ``server``; the reply has ``status`` and ``body``."""
        cmd = {
            "cmd": "rest",
            "appId": server.app_id,
            "key": server.key,
            "secret": server.secret,
            "host": server.host,
            "port": server.port,
            "path": server.path,
            "tls": tls,
            "masterKey": master_key,
            "call": call,
            "args": list(args),
        }
        return await self.call(cmd, timeout=6.0)

    def _take(self, pattern: Pattern) -> Message | None:
        for index, message in enumerate(self.messages):
            if matches(pattern, message):
                return self.messages.pop(index)
        return None

    async def expect(self, pattern: Pattern, timeout: float = 5.0) -> Message:
        """Wait for (and consume) the first report matching ``pattern``, including earlier ones."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._arrived.clear()
            found = self._take(pattern)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0 or not self.running:
                raise AssertionError(self._describe_miss(pattern, timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def assert_none(self, pattern: Pattern, within: float = 0.5) -> None:
        """Fail if a report matching ``pattern`` is waiting or arrives within ``within`` seconds."""
        await asyncio.sleep(within)
        found = [m for m in self.messages if matches(pattern, m)]
        assert not found, f"expected no report matching {_show(pattern)}, got {found}"

    def _recent(self) -> str:
        recent = "\n  ".join(json.dumps(m) for m in self.history[-25:]) or "(none)"
        return f"last reports:\n  {recent}\nstderr:\n{self._stderr_tail()}"

    def _describe_miss(self, pattern: Pattern, timeout: float) -> str:
        return (
            f"no report matching {_show(pattern)} within {timeout}s"
            f"{'' if self.running else ' (driver.mjs has exited)'}\n{self._recent()}"
        )

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ConnectionError, ProcessLookupError):
                assert proc.stdin is not None
                proc.stdin.write(b'{"cmd":"exit","id":0}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 1.0)
        for task in list(self._tasks):
            task.cancel()


def _show(pattern: Pattern) -> str:
    return json.dumps(dict(pattern)) if isinstance(pattern, Mapping) else repr(pattern)
