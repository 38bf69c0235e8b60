"""A TCP proxy on 127.0.0.1 that a test can cut: a network partition between one process and
a server (the broker), in the test's own event loop.

:meth:`TcpProxy.partition` resets every connection through it and refuses new ones (a
partition the client notices at once, as with a closed firewall port that answers RST);
:meth:`TcpProxy.heal` lets connections through again.
"""

import asyncio
import contextlib
import socket
import struct


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.open = True
        self.refused = 0
        """Connections refused while partitioned."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        sockets = self._server.sockets
        port: int = sockets[0].getsockname()[1]
        return port

    def url_for(self, url: str) -> str:
        """``url`` (an amqp:// URL to the target) through this proxy."""
        host, port = self._target
        return url.replace(f"@{host}:{port}", f"@127.0.0.1:{self.port}", 1)

    def partition(self) -> None:
        self.open = False
        for writer in list(self._writers):
            _reset(writer)

    def heal(self) -> None:
        self.open = True

    async def stop(self) -> None:
        self.partition()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            _reset(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)
            return
        self._writers.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while self.open and (chunk := await source.read(65536)):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(sink)
            _reset(sink)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped connection looks to its peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
