"""How `bridge serve` has uvicorn speak HTTP/1.1: its httptools protocol, with each answer's
head and body leaving in one write.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body in a second write when `http.response.body` follows:
two system calls and two TCP segments per answer, so the client reads (and, on one machine,
is woken) twice. The bridge answers in one piece (its bodies are short and sent at once),
as Node's `http` does. Measured side by side on 2 cores with wrk on the same machine
(docs/performance.md): the server's CPU time per request did not change, while requests
per second rose by about 5 % (an evaluation, the echo) to 10 % (a token).

`CoalescingHttpToolsProtocol` hands uvicorn's own protocol a transport that holds back
a write that begins a response (`HTTP/1.x ...`) until the next write, which carries the
body, and sends both at once. Whatever happens in between, nothing stays held past the
current turn of the event loop: a write held is flushed by a callback queued when it was
held (a streamed answer's first chunk may come later), and before anything else is asked
of the transport (closing it, pausing reading, reading its details).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A body is joined to its head (one write) up to this size; a larger one is written after
# the head rather than copied.
_JOIN_LIMIT = 64 * 1024


class HeadHoldingTransport:
    """A connection's transport that sends a response's head with the write after it."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_LIMIT:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        elif data[:7] == b"HTTP/1." and len(data) <= _JOIN_LIMIT:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now (no body came in this turn of the loop)."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else (is_closing, pause_reading, get_extra_info, abort, ...) acts on the
        # transport as it would have been without the hold.
        self.flush()
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `HeadHoldingTransport` (pass it as `http=`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self.loop))  # type: ignore[arg-type]
