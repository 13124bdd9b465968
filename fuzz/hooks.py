"""Schemathesis hooks for `make fuzz`: every call is recorded with what the bridge logged.

Loaded by `st run` (`hooks` in `fuzz/schemathesis.toml`). The run uses one worker, and the
bridge answers one request at a time on one event loop, so what the bridge logs between the
end of one call and the end of the next belongs to the next call: a traceback is written
before the response leaves (a handler's `log.exception`) or right after it, before another
request can run (an exception that escaped the application). After a 5xx the hook waits for
the log to settle, so the traceback lands with the call that caused it.

Each call becomes one JSON line in `$FUZZ_RECORD`: the operation and status, and for a 5xx,
a network error or a logged traceback also the request, the response and the log excerpt.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis import Case, HookContext, Response

from fuzz import tracebacks

REPO = Path(__file__).resolve().parents[1]
# Longest request or response body kept in a record (the full case is in schemathesis'
# own report); enough to see the shape of the input.
MAX_SHOWN = 600
SETTLE_SECONDS = 0.05
MAX_WAIT_SECONDS = 1.0


class Recorder:
    def __init__(self, log: Path, record: Path) -> None:
        self._log = log
        self._record = record
        self._offset = 0
        self._partial = ""
        self._calls = 0

    def _read_log(self, settle: bool) -> list[str]:
        """Complete lines the bridge logged since the last read; with `settle`, after the
        log has stopped growing (or `MAX_WAIT_SECONDS`)."""
        if settle:
            deadline = time.monotonic() + MAX_WAIT_SECONDS
            size = -1
            while time.monotonic() < deadline:
                time.sleep(SETTLE_SECONDS)
                now = self._log.stat().st_size
                if now == size:
                    break
                size = now
        with self._log.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines

    def call(self, case: Case[Any], response: Response | None, request: Any) -> None:
        self._calls += 1
        status = response.status_code if response is not None else None
        failed = status is None or status >= 500
        lines = self._read_log(settle=failed)
        crashes = tracebacks.parse(lines, REPO)
        errors = [line for line in lines if " ERROR " in line and "Traceback" not in line]
        entry: dict[str, Any] = {"n": self._calls, "operation": case.operation.label}
        entry["status"] = status
        if failed or crashes:
            entry["request"] = _request(request)
            entry["response"] = _response(response)
            entry["crashes"] = [_crash(c) for c in crashes]
            entry["log_errors"] = [e[:MAX_SHOWN] for e in errors]
        with self._record.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


def _shown(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


_SECRET_HEADERS = frozenset({"authorization", "cookie"})


def _request(request: Any) -> dict[str, Any]:
    if not isinstance(request, requests.PreparedRequest):
        return {}
    headers = {
        k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in request.headers.items()
    }
    return {
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": _shown(request.body if isinstance(request.body, bytes | str) else None),
    }


def _response(response: Response | None) -> dict[str, Any] | None:
    if response is None:
        return None
    return {
        "status": response.status_code,
        "content_type": _header(response, "content-type"),
        "request_id": _header(response, "x-request-id"),
        "body": _shown(response.content),
    }


def _header(response: Response, name: str) -> str | None:
    values = response.headers.get(name)
    return values[0] if values else None


def _crash(crash: tracebacks.Crash) -> dict[str, Any]:
    return {
        "message": crash.message[:MAX_SHOWN],
        "exception": crash.exception,
        "bridge_frame": crash.bridge_frame.short(REPO) if crash.bridge_frame else None,
        "innermost": crash.innermost.short(REPO) if crash.innermost else None,
    }


_recorder: Recorder | None = None


def _get() -> Recorder | None:
    global _recorder
    if _recorder is None and "FUZZ_RECORD" in os.environ:
        _recorder = Recorder(Path(os.environ["FUZZ_BRIDGE_LOG"]), Path(os.environ["FUZZ_RECORD"]))
    return _recorder


@schemathesis.hook
def after_call(context: HookContext, case: Case[Any], response: Response) -> None:
    recorder = _get()
    if recorder is not None:
        recorder.call(case, response, response.request)


@schemathesis.hook
def after_network_error(
    context: HookContext, case: Case[Any], request: requests.PreparedRequest
) -> None:
    recorder = _get()
    if recorder is not None:
        recorder.call(case, None, request)


@schemathesis.serializer("application/secevent+jwt")
def security_event_token(context: Any, value: Any) -> bytes | None:
    """RFC 8935 push bodies are compact JWS text: generated strings are sent as they are (a
    SET that is not a JWS is one of the refusals the push endpoint must answer)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")
