"""Helpers shared by the service fixtures: errors, ports, commands, Debian packages, waiting.

Every failure here is a `ServiceSetupError` carrying what was tried and what came back, so a
fixture that cannot bring its server up fails the run with a message a person can act on,
never a skip and never a bare traceback from deep inside a subprocess call.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path


class ServiceSetupError(RuntimeError):
    """A test server could not be installed or started; the message says why."""


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now.

    For servers that must be told their port up front (PostgreSQL, aiosmtpd). Another process
    can take it before the server binds, so callers retry a start that fails on the port.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(text: str, lines: int = 40) -> str:
    """The last lines of a command's output or a log, for error messages."""
    return "\n".join(text.strip().splitlines()[-lines:])


def file_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        return tail(path.read_text(encoding="utf-8", errors="replace"), lines)
    except OSError as exc:
        return f"(no log at {path}: {exc})"


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a set-up command; on failure raise `ServiceSetupError` with its output.

    `what` names the step in words ("initdb", "npm ci") so the error says which one failed.
    """
    try:
        result = subprocess.run(
            [os.fspath(part) for part in command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceSetupError(f"{what}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceSetupError(f"{what}: no answer after {timeout:.0f} s") from exc
    if result.returncode != 0:
        output = tail(result.stdout + "\n" + result.stderr)
        raise ServiceSetupError(f"{what} failed (exit {result.returncode}):\n{output}")
    return result


@contextlib.contextmanager
def _apt_lock() -> Iterator[None]:
    """One apt-get at a time from this machine's test runs (dpkg refuses a second one)."""
    path = Path(tempfile.gettempdir()) / "authzen-bridge-tests-apt.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apt_install(packages: Sequence[str], *, why: str) -> None:
    """Install Debian packages non-interactively, as CI does on a fresh machine.

    Needs root (CI and the developers' machines run as root). `why` says which server needs
    them, for the error message. Package lists are refreshed first: a fresh machine may have
    none, or stale ones that name versions the mirror no longer has.
    """
    if shutil.which("apt-get") is None:
        raise ServiceSetupError(f"{why}: install {' '.join(packages)} (no apt-get here)")
    if os.geteuid() != 0:
        raise ServiceSetupError(
            f"{why}: {' '.join(packages)} is missing and installing it needs root: "
            f"run `apt-get install -y {' '.join(packages)}` as root, then run the tests again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt or dpkg on the machine (an unattended upgrade) holds the lock for a while.
    lock_wait = ["-o", "DPkg::Lock::Timeout=300"]
    with _apt_lock():
        run(["apt-get", *lock_wait, "update", "-qq"], what=f"{why}: apt-get update", timeout=600)
        run(
            [
                "apt-get",
                *lock_wait,
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                *packages,
            ],
            what=f"{why}: apt-get install {' '.join(packages)}",
            env=env,
            timeout=900,
        )


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    exited: Callable[[], bool] | None = None,
    log: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `ready` until it is true; raise `ServiceSetupError` after `timeout` seconds.

    `exited` tells whether the server process has ended, so a server that crashed at start
    fails at once instead of at the timeout; `log` gives its output for the message.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if exited is not None and exited():
            problem = "the server exited while starting"
        elif time.monotonic() > deadline:
            problem = f"not ready after {timeout:.0f} s"
        else:
            time.sleep(interval)
            continue
        detail = "" if log is None else f"\n{log()}"
        raise ServiceSetupError(f"{what}: {problem}{detail}")
