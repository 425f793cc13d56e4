"""A regional feeder: a TCP relay in front of the broker for a subset of clinics, whose link can
drop. ``cut()`` ends every relayed connection and refuses new ones (the path is gone: connects fail
at once), or with ``silent`` keeps them open and forwards nothing (packets vanish: only the
agent's keep-alive logic notices, and new connects hang until their timeout). ``restore()`` brings
the path back. TLS passes through untouched (the broker's certificate is for 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib


class Feeder:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.target = port
        self.port = 0
        self.down = False
        self.silent = False
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port or 0,
                                                  backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            if self.silent:
                self._held.add(writer)   # accepted, then nothing: a connect that never answers
                return
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        self._conns.update((writer, up_w))
        await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer),
                             return_exceptions=True)
        for w in (writer, up_w):
            self._conns.discard(w)
            w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                break
            if self.down and self.silent:
                continue    # swallowed: the link is silent
            dst.write(data)
            await dst.drain()
        with contextlib.suppress(OSError):
            dst.write_eof()

    async def cut(self, *, silent: bool = False) -> None:
        self.down, self.silent = True, silent
        if silent:
            return
        # The path is gone: close the listening socket too, so that new connects are refused.
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()
        if self._server is not None:
            self._server.close()

    async def restore(self) -> None:
        was_silent = self.silent
        self.down = self.silent = False
        # After a silent spell the old connections carry a torn stream: end them too.
        for w in list(self._held | (self._conns if was_silent else set())):
            w.transport.abort()
        self._held.clear()
        if not was_silent:
            await self.start()     # same port again

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._conns | self._held):
            w.transport.abort()
