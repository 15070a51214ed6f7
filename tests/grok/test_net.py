"""bot/grok/net.py: httpx over the asyncio network backend, against small raw servers that misbehave
on purpose: timeouts, resets, idle closes, back-pressure both ways, keep-alive and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpcore
import httpx
import pytest
import pytest_asyncio

from bot.grok.net import READ_HIGH_WATER, AsyncioBackend, AsyncioStream, AsyncioTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw TCP server on loopback running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}/"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def response(body: bytes, *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AsyncioTransport(), timeout=5.0) as client:
        yield client


async def test_keep_alive_reuses_one_connection(http: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            writer.write(response(b"echo:" + body))

    async with Server(handler) as server:
        for n in range(3):
            answer = await http.post(server.url, content=b"n%d" % n)
            assert answer.status_code == 200
            assert answer.content == b"echo:n%d" % n
        assert server.connections == 1


async def test_streamed_chunks_arrive_one_by_one_as_sent(http: httpx.AsyncClient) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    async with Server(handler) as server, http.stream("GET", server.url) as answer:
        parts = answer.aiter_raw()
        assert await anext(parts) == b"first"  # before the rest was even sent
        release.set()
        assert [part async for part in parts] == [b"second"]


async def test_silent_server_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async with (
        Server(handler) as server,
        httpx.AsyncClient(transport=AsyncioTransport(), timeout=httpx.Timeout(5.0, read=0.2)) as http,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url)


async def test_nothing_listening_is_a_connect_error(http: httpx.AsyncClient) -> None:
    async with Server(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url
    with pytest.raises(httpx.ConnectError):
        await http.get(url)


async def test_reset_mid_body_is_a_transport_error(http: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.transport.abort()  # RST, not a clean close

    async with Server(handler) as server:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await http.get(server.url)


async def test_connection_closed_while_idle_is_replaced(http: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(b"once"))  # keep-alive promised, then closed while idle
        await writer.drain()

    async with Server(handler) as server:
        assert (await http.get(server.url)).content == b"once"
        await asyncio.sleep(0.1)  # the close reaches the pooled connection
        assert (await http.get(server.url)).content == b"once"
        assert server.connections == 2


async def test_large_body_both_ways_survives_back_pressure(http: httpx.AsyncClient) -> None:
    size = 8 * READ_HIGH_WATER
    sent = bytes(range(256)) * (size // 256)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        writer.write(response(body[::-1]))
        await writer.drain()

    async with Server(handler) as server:
        answer = await http.post(server.url, content=sent)
    assert answer.content == sent[::-1]


async def test_a_body_nobody_reads_is_a_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)  # never reads: the socket buffers fill and writing pauses

    timeout = httpx.Timeout(5.0, write=0.3)
    async with (
        Server(handler) as server,
        httpx.AsyncClient(transport=AsyncioTransport(), timeout=timeout) as http,
    ):
        with pytest.raises(httpx.WriteTimeout):
            await http.post(server.url, content=b"x" * (64 << 20))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_verifies_the_server_and_speaks_http_1_1(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server_side.set_alpn_protocols(["h2", "http/1.1"])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            writer.write(response(b"secure:" + body))

    async with Server(handler, server_side) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=AsyncioTransport(verify=trusting)) as http:
            first = await http.post(server.url, content=b"a")
            second = await http.post(server.url, content=b"b")
        assert (first.content, second.content) == (b"secure:a", b"secure:b")
        assert first.http_version == "HTTP/1.1"
        assert server.connections == 1

        async with httpx.AsyncClient(transport=AsyncioTransport()) as http:  # the system's CAs
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(server.url)


async def test_backend_reports_addresses_and_readability() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()

    async with Server(handler) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=1.0)
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("ssl_object") is None
        assert await stream.read(3, timeout=1.0) == b"hel"
        assert stream.get_extra_info("is_readable") is True  # "lo" is still buffered
        assert await stream.read(100, timeout=1.0) == b"lo"
        assert await stream.read(100, timeout=1.0) == b""  # the server closed
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"late", timeout=1.0)
        await stream.aclose()


async def dripping(server_parts: list[tuple[float, bytes]]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for pause, part in server_parts:
            await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        await asyncio.sleep(30)

    return handler


async def connect(server: Server) -> AsyncioStream:
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=1.0)
    assert isinstance(stream, AsyncioStream)
    return stream


@contextlib.asynccontextmanager
async def gathering(
    parts: list[tuple[float, bytes]], seconds: float, *, urgent: bytes = b""
) -> AsyncIterator[AsyncioStream]:
    """A stream from a server dripping `parts` (the first is b"first"), read once, then gathering."""
    async with Server(await dripping(parts)) as server:
        stream = await connect(server)
        assert await stream.read(100, timeout=5.0) == b"first"
        stream.gather(seconds, urgent=urgent)
        try:
            yield stream
        finally:
            await stream.aclose()


async def test_gathering_hands_over_many_chunks_per_wake_up() -> None:
    parts = [(0.0, b"first")] + [(0.005, b"%02d" % n) for n in range(20)]
    async with gathering(parts, 0.25) as stream:
        received, reads = b"", 0
        while len(received) < 40:
            received += await stream.read(100, timeout=5.0)
            reads += 1
        assert received == b"".join(b"%02d" % n for n in range(20))
        assert reads <= 5  # 20 chunks over about 0.1 s, woken at most every 0.25 s


async def test_gathering_still_wakes_at_once_for_the_urgent_bytes_and_the_end() -> None:
    parts = [(0.0, b"first"), (0.05, b"more"), (0.05, b"[DONE]")]
    async with gathering(parts, 60.0, urgent=b"[DONE]") as stream:
        # A whole minute of gathering, yet the urgent bytes bring everything at once.
        got = await asyncio.wait_for(stream.read(100, timeout=5.0), 5.0)
        if got == b"more":  # the two arrived in separate reads only if `more` came first alone
            got += await asyncio.wait_for(stream.read(100, timeout=5.0), 5.0)
        assert got == b"more[DONE]"

    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"first")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"last")
        await writer.drain()

    async with Server(closes) as server:
        stream = await connect(server)
        assert await stream.read(100, timeout=5.0) == b"first"
        stream.gather(60.0)
        assert await asyncio.wait_for(stream.read(100, timeout=5.0), 5.0) == b"last"  # the close
        assert await stream.read(100, timeout=5.0) == b""


async def test_turning_gathering_off_hands_over_what_waits() -> None:
    parts = [(0.0, b"first"), (0.05, b"second")]
    async with gathering(parts, 60.0) as stream:
        reading = asyncio.create_task(stream.read(100, timeout=5.0))
        await asyncio.sleep(0.3)  # "second" has arrived and waits for the gathering timer
        assert not reading.done()
        stream.gather(0.0)
        assert await asyncio.wait_for(reading, 5.0) == b"second"


async def test_flush_hands_over_what_is_gathered_and_gathering_goes_on() -> None:
    parts = [(0.0, b"first"), (0.05, b"second"), (0.3, b"third")]
    async with gathering(parts, 60.0) as stream:
        reading = asyncio.create_task(stream.read(100, timeout=5.0))
        stream.flush()  # nothing gathered yet: the reader keeps waiting, no empty read
        await asyncio.sleep(0.2)  # "second" has arrived and is gathered
        assert not reading.done()
        stream.flush()
        assert await asyncio.wait_for(reading, 5.0) == b"second"
        reading = asyncio.create_task(stream.read(100, timeout=5.0))
        await asyncio.sleep(0.5)  # "third" arrived: still gathered, since the flush did not stop it
        assert not reading.done()
        stream.flush()
        assert await asyncio.wait_for(reading, 5.0) == b"third"
