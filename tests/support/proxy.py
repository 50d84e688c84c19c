"""A TCP proxy on loopback that can go silent without closing (a half-open link), then reset.

It runs its own event loop in a thread, so a test's blocking calls never stall the traffic it
forwards. `freeze()` stops forwarding in both directions while every connection stays open: the
client's writes still succeed (the kernel buffers them) and no answer ever comes, as when a
network path dies without a FIN or RST. `reset()` then aborts every connection with an RST and
forwards again for new connections.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servers import free_port

CHUNK = 65536


class FreezableProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let the aborted transports finish closing

    def freeze(self) -> None:
        """Stop forwarding; keep every connection open."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def reset(self) -> None:
        """Abort every connection with an RST, then forward new connections again."""
        done = threading.Event()

        def abort() -> None:
            for writer in list(self._writers):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # Linger 0: close() sends an RST instead of a FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            self._writers.clear()
            self._flowing.set()
            done.set()

        self._loop.call_soon_threadsafe(abort)
        done.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing.set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    break
                # Read while flowing, then frozen: hold it back, as a dead path would.
                await self._flowing.wait()
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer in self._writers:
                self._writers.discard(writer)
                writer.transport.abort()


@contextmanager
def freezable_proxy(upstream_port: int) -> Iterator[FreezableProxy]:
    proxy = FreezableProxy(upstream_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
