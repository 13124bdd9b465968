"""`bridge serve --workers N`: N worker processes, each a whole bridge (uvicorn and the app),
each listening on its own socket bound to the same address with `SO_REUSEPORT`, so that the
kernel spreads incoming connections over them evenly. (One shared listening socket, as
uvicorn's own `--workers` has it, lets whichever worker wakes first accept a whole burst of
connections: behind a load balancer with long-lived connections one worker then does all the
work.)

The supervisor (this process) holds no socket and serves nothing: it starts the workers,
starts a new one when one dies, and on SIGTERM or SIGINT stops them all. A worker that dies
within seconds of starting, again and again, is a configuration that cannot serve: the
supervisor then stops rather than restarting it forever.

State is in the store the workers share, housekeeping is done by the holder of its lease
(`housekeeping`), and the metrics of all workers meet in one folder (`metrics_endpoint`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("bridge.workers")

# A worker that dies this soon after its start, this many times in a row, is not restarted.
EARLY_DEATH_SECONDS = 10.0
EARLY_DEATHS = 3
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long the workers get to finish their requests when asked to stop.
STOP_SECONDS = 20.0


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def listening_socket(where: Listen) -> socket.socket:
    """A socket bound to `where` beside the other workers' (`SO_REUSEPORT`)."""
    family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on connections whose socket says TCP, and a response written in two parts would
    # otherwise wait for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((where.host, where.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, count: int, target: Callable[[], None]) -> None:
        # Workers are fresh interpreters (spawn): nothing of the supervisor's state, event
        # loop or open files leaks into them.
        self._context = multiprocessing.get_context("spawn")
        self._count = count
        self._target = target
        self._workers: dict[int, tuple[BaseProcess, float]] = {}
        self._stopping = False
        self._early_deaths = 0

    def run(self) -> int:
        """Serve until told to stop; the exit status for `bridge serve`."""
        previous = {signum: signal.signal(signum, self._stop) for signum in _STOP_SIGNALS}
        for _ in range(self._count):
            self._start()
        try:
            while not self._stopping:
                time.sleep(0.2)
                if not self._replace_dead():
                    log.error("workers keep dying right after they start: stopping (see above)")
                    return 1
            return 0
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self) -> None:
        process = self._context.Process(target=self._target, daemon=False)
        process.start()
        assert process.pid is not None
        self._workers[process.pid] = (process, time.monotonic())
        log.info("worker %d started", process.pid)

    def _replace_dead(self) -> bool:
        for pid, (process, started) in list(self._workers.items()):
            if process.is_alive() or self._stopping:
                continue
            del self._workers[pid]
            early = time.monotonic() - started < EARLY_DEATH_SECONDS
            self._early_deaths = self._early_deaths + 1 if early else 0
            log.warning("worker %d exited (status %s)", pid, process.exitcode)
            if self._early_deaths >= EARLY_DEATHS:
                return False
            self._start()
        return True

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        for process, _ in self._workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
