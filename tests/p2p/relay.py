"""A raw TCP man-in-the-middle for the tests: forwards bytes, can flip one."""

from __future__ import annotations

import asyncio
from typing import Final

from node.p2p.handshake import HELLO_BYTES
from node.p2p.link import PREFIX_BYTES
from tests.p2p.support import HOST

CHUNK_BYTES: Final = 64 * 1024


class TamperingRelay:
    """Relays connections to ``target_port``. On the first connection only,
    flips one bit of frame number ``tamper_frame`` going from dialer to target
    (frame 0 is the dialer's auth frame)."""

    def __init__(self, target_port: int, tamper_frame: int) -> None:
        self._target_port = target_port
        self._tamper_frame = tamper_frame
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.tampered = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_connection, HOST, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        tamper = self._connections == 0
        self._connections += 1
        task = asyncio.create_task(self._relay(reader, writer, tamper))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tamper: bool
    ) -> None:
        target_reader, target_writer = await asyncio.open_connection(HOST, self._target_port)
        self._writers.append(target_writer)
        try:
            forward = self._forward_frames(reader, target_writer, tamper)
            backward = self._forward_bytes(target_reader, writer)
            tasks = {asyncio.create_task(forward), asyncio.create_task(backward)}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            writer.transport.abort()
            target_writer.transport.abort()

    async def _forward_frames(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tamper: bool
    ) -> None:
        try:
            writer.write(await reader.readexactly(HELLO_BYTES))
            frame = 0
            while True:
                header = await reader.readexactly(PREFIX_BYTES)
                body = bytearray(await reader.readexactly(int.from_bytes(header, "big")))
                if tamper and frame == self._tamper_frame:
                    body[len(body) // 2] ^= 0x01
                    self.tampered.set()
                writer.write(header + bytes(body))
                await writer.drain()
                frame += 1
        except (asyncio.IncompleteReadError, OSError):
            return

    async def _forward_bytes(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                writer.write(chunk)
                await writer.drain()
        except OSError:
            return
