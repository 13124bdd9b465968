"""`bridge.serving`: an answer's head and body leave in one write, and everything HTTP/1.1
does still works on the protocol `bridge serve` runs: keep-alive, pipelining, streamed and
large bodies, HEAD, 100-continue, an app failing before or after it started answering."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from bridge.serving import CoalescingHttpToolsProtocol, HeadHoldingTransport

# -- the transport alone --------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _holding() -> tuple[HeadHoldingTransport, _Recorder, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    recorder = _Recorder()
    return HeadHoldingTransport(recorder, loop), recorder, loop  # type: ignore[arg-type]


def test_a_head_leaves_with_its_body() -> None:
    transport, recorder, loop = _holding()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    loop.run_until_complete(asyncio.sleep(0))  # the queued flush finds nothing
    assert len(recorder.writes) == 1
    loop.close()


def test_a_head_alone_leaves_within_the_turn_of_the_loop() -> None:
    transport, recorder, loop = _holding()
    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    loop.run_until_complete(asyncio.sleep(0))
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    loop.close()


def test_closing_or_asking_the_transport_sends_what_is_held_first() -> None:
    transport, recorder, loop = _holding()
    transport.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    assert transport.is_closing() is False
    assert recorder.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"]
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport.close()
    assert recorder.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n" and recorder.closed
    loop.close()


def test_bodies_and_large_writes_pass_straight_through() -> None:
    transport, recorder, loop = _holding()
    transport.write(b"5\r\nhello\r\n")  # a chunk, not a head
    assert recorder.writes == [b"5\r\nhello\r\n"]
    big = b"x" * (70 * 1024)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(big)  # too large to copy: after the head, not joined to it
    assert recorder.writes[1:] == [b"HTTP/1.1 200 OK\r\n\r\n", big]
    loop.close()


# -- on a server ----------------------------------------------------------------------------


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path == "/fail-before":
        raise RuntimeError("before the answer")
    headers = [(b"content-type", b"text/plain")]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/fail-after":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise RuntimeError("after the head")
    payload = b"x" * 200_000 if path == "/large" else b"echo:" + body
    if path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# What the server wrote to its sockets, write by write.
WRITES: list[bytes] = []


class _CountedTransport:
    """The socket's own transport, recording each write that reaches it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RecordingProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CountedTransport(transport))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_app, log_level="critical", access_log=False, http=_RecordingProtocol)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    yield "127.0.0.1", port
    running.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _connect(server: tuple[str, int]) -> socket.socket:
    conn = socket.create_connection(server, timeout=5)
    # No TCP_NODELAY on the client side, and none needed: an answer is one segment.
    return conn


def _read_answer(conn: socket.socket, buffer: bytearray) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer (content-length, chunked or none) from `conn`: head and body."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        assert chunk, bytes(buffer)
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(buffer) < length:
            buffer += conn.recv(65536)
        body = bytes(buffer[:length])
        buffer[:] = buffer[length:]
        return head, body
    if b"transfer-encoding: chunked" in lower:
        while not bytes(buffer).endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            assert chunk
            buffer += chunk
        body, buffer[:] = bytes(buffer), b""
        return head, body
    return head, b""


def _request(path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def test_answers_on_one_kept_alive_connection(server: tuple[str, int]) -> None:
    with _connect(server) as conn:
        buffer = bytearray()
        for n in range(20):
            conn.sendall(_request("/", f"request {n}".encode()))
            head, body = _read_answer(conn, buffer)
            assert head.startswith(b"HTTP/1.1 200 OK") and body == f"echo:request {n}".encode()


def test_a_small_answer_leaves_in_one_write(server: tuple[str, int]) -> None:
    with _connect(server) as conn:
        WRITES.clear()
        conn.sendall(_request("/", b"ping"))
        _head, body = _read_answer(conn, bytearray())
        assert body == b"echo:ping"
        assert len(WRITES) == 1
        assert WRITES[0].startswith(b"HTTP/1.1 200 OK") and WRITES[0].endswith(b"echo:ping")


def test_pipelined_requests_are_answered_in_order(server: tuple[str, int]) -> None:
    with _connect(server) as conn:
        conn.sendall(b"".join(_request("/", f"p{n}".encode()) for n in range(5)))
        buffer = bytearray()
        bodies = [_read_answer(conn, buffer)[1] for _ in range(5)]
        assert bodies == [f"echo:p{n}".encode() for n in range(5)]


def test_streamed_large_empty_and_head_answers(server: tuple[str, int]) -> None:
    with _connect(server) as conn:
        buffer = bytearray()
        conn.sendall(_request("/stream"))
        head, body = _read_answer(conn, buffer)
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"one " in body and b"three" in body
        conn.sendall(_request("/large"))
        head, body = _read_answer(conn, buffer)
        assert body == b"x" * 200_000
        conn.sendall(_request("/empty"))
        head, body = _read_answer(conn, buffer)
        assert head.startswith(b"HTTP/1.1 204") and body == b""
        conn.sendall(b"HEAD / HTTP/1.1\r\nhost: test\r\n\r\n")
        time.sleep(0.1)
        conn.sendall(_request("/", b"after head"))
        data = b""
        while b"echo:after head" not in data:
            data += conn.recv(65536)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.count(b"HTTP/1.1 200 OK") == 2


def test_100_continue_then_the_answer(server: tuple[str, int]) -> None:
    with _connect(server) as conn:
        conn.sendall(
            _request("/", b"", "expect: 100-continue\r\n").replace(
                b"content-length: 0", b"content-length: 4"
            )
        )
        interim = conn.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(b"late")
        buffer = bytearray(interim.partition(b"\r\n\r\n")[2])
        head, body = _read_answer(conn, buffer)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == b"echo:late"


@pytest.mark.parametrize("path", ["/fail-before", "/fail-after"])
def test_an_app_that_fails_still_leaves_a_sound_connection_state(
    server: tuple[str, int], path: str
) -> None:
    with _connect(server) as conn:
        conn.sendall(_request(path))
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break  # the server closed the connection, as uvicorn does
            data += chunk
        if path == "/fail-before":
            assert data.startswith(b"HTTP/1.1 500 Internal Server Error")
            assert data.endswith(b"Internal Server Error")
        else:  # the head went out before the failure; then the connection closed
            assert data.startswith(b"HTTP/1.1 200 OK")


def test_the_held_head_is_not_a_bytes_copy_of_a_mutable_buffer() -> None:
    transport, recorder, loop = _holding()
    head: Any = bytearray(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(head)
    head[:] = b"changed"
    transport.write(b"body")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    loop.close()
