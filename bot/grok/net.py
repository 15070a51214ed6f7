"""The xAI connection's network layer: httpx's own transport over httpcore's connection pool, with
an asyncio network backend in place of httpcore's default anyio one.

Why: a streamed answer arrives one small chunk at a time, and each chunk wakes the bot. On its
way from the socket to httpcore, the anyio backend spends a task step, a cancel scope and a timer
on every read; here a read takes what an asyncio Protocol already buffered, or waits on one
future with one timer. Measured with `python bench/grok_stream.py` and `python
bench/engine_stream.py` (figures in docs/architecture.md). HTTP itself (h11, keep-alive, pooling,
TLS settings, exception mapping) stays httpx's and httpcore's.

Only connections without a proxy use it: with a proxy from the environment or arguments, httpx
builds its usual transport.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx

# Past this many unread bytes the socket stops being read until httpcore catches up.
READ_HIGH_WATER = 1 << 20
READ_LOW_WATER = 1 << 18
# httpcore's `socket_options` item: (level, option, value) or (level, option, None, length)
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None  # set while writing is paused
        self.reading_paused = False
        # Gathering (see AsyncioStream.gather): wake a waiting reader at most every `gather` seconds.
        self.gather = 0.0
        self.urgent: tuple[bytes, ...] = ()
        self.woken_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > READ_HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        reader = self.reader
        if reader is None or reader.done():
            return
        if self.gather:
            for marker in self.urgent:
                if marker in data:
                    break
            else:
                if self.timer is None:
                    due = self.woken_at + self.gather
                    if self.loop.time() < due:
                        self.timer = self.loop.call_at(due, self.wake)
                        return
                    self.wake()
                return
        self.wake()

    def wake(self) -> None:
        """Hand what is buffered to the waiting reader now."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        reader = self.reader
        if reader is not None and not reader.done() and (self.chunks or self.eof):
            self.woken_at = self.loop.time()
            reader.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_all()
        return False  # close our side too: HTTP/1.1 has no use for a half-open connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_all()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of what is buffered, in one piece."""
        chunks = self.chunks
        if self.size <= max_bytes:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            parts: list[bytes] = []
            wanted = max_bytes
            while wanted:
                part = chunks.popleft()
                if len(part) > wanted:
                    chunks.appendleft(part[wanted:])
                    part = part[:wanted]
                parts.append(part)
                wanted -= len(part)
            data = b"".join(parts)
        self.size -= len(data)
        if self.reading_paused and self.size < READ_LOW_WATER and self.transport is not None:
            self.transport.resume_reading()
            self.reading_paused = False
        return data

    def _wake_all(self) -> None:
        self.wake()  # eof is set: the reader goes even with nothing buffered
        writable = self.writable
        if writable is not None and not writable.done():
            writable.set_result(None)


def _expire(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection, read and written through an asyncio transport."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def gather(self, seconds: float, *, urgent: bytes | tuple[bytes, ...] = ()) -> None:
        """While data keeps arriving, wake a waiting reader at most once every `seconds` (0: at
        every arrival), except at once on data containing `urgent` (or any of them), at the end of
        the connection, or when gathering is turned off. A stream read only to be shown once a second need not
        run its whole read path for every chunk: gathering a few chunks per wake-up divides that
        cost, for a delay of at most `seconds`."""
        protocol = self._protocol
        protocol.gather = seconds
        protocol.urgent = (urgent,) if isinstance(urgent, bytes) else urgent
        if b"" in protocol.urgent:  # it is in every piece of data
            protocol.urgent = tuple(u for u in protocol.urgent if u)
        if not seconds:
            protocol.wake()

    def flush(self) -> None:
        """Hand what is gathered to the waiting reader now; gathering goes on."""
        self._protocol.wake()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.chunks:
            while not protocol.chunks and not protocol.eof:
                await self._wait_readable(seconds=timeout)
            if not protocol.chunks:
                if protocol.error is not None:
                    raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
                return b""
        return protocol.take(max_bytes)

    async def _wait_readable(self, *, seconds: float | None) -> None:
        protocol = self._protocol
        loop = asyncio.get_running_loop()
        waiter = protocol.reader = loop.create_future()
        timer = None
        if seconds is not None:
            timer = loop.call_later(seconds, _expire, waiter, httpcore.ReadTimeout("timed out"))
        try:
            await waiter
        finally:
            protocol.reader = None
            if timer is not None:
                timer.cancel()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing() or protocol.eof:
            raise httpcore.WriteError(str(protocol.error or "the connection is closed"))
        self._transport.write(buffer)
        writable = protocol.writable
        if writable is None:
            return
        loop = asyncio.get_running_loop()
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _expire, writable, httpcore.WriteTimeout("timed out"))
        try:
            await asyncio.shield(writable)
        finally:
            if timer is not None:
                timer.cancel()
        if protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        self._protocol.transport = cast(asyncio.Transport, transport)
        return AsyncioStream(self._protocol.transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # httpcore asks this of an idle pooled connection
            protocol = self._protocol
            return bool(protocol.chunks) or protocol.eof
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name not in {"ssl_object", "sockname", "peername", "socket"}:
            return None
        return self._transport.get_extra_info(name)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(_Protocol, host, port, local_addr=local)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _opened(transport, protocol, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {path} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _opened(transport, protocol, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _opened(
    transport: asyncio.BaseTransport, protocol: _Protocol, options: Iterable[SocketOption] | None
) -> AsyncioStream:
    transport = cast(asyncio.Transport, transport)
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        for option in options or ():
            sock.setsockopt(*option)
    return AsyncioStream(transport, protocol)


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` whose pool runs on AsyncioBackend (HTTP/1.1, no proxy)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: ssl.SSLContext | str | bool = True,
        retries: int = 0,
    ) -> None:
        super().__init__(limits=limits, verify=verify, retries=retries)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=AsyncioBackend(),
        )
