"""The supervisor of `bridge serve --workers N`: it gives up on workers that die as soon as
they start rather than restarting them forever, and SIGTERM stops it and every worker."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bridge.workers import Supervisor


def test_workers_that_die_at_once_stop_the_supervisor_with_status_1() -> None:
    before = signal.getsignal(signal.SIGINT)
    started = time.monotonic()
    # Each worker exits with uvicorn's start-up failure status as soon as it runs.
    assert Supervisor(2, functools.partial(os._exit, 3)).run() == 1
    # It did not keep restarting them (well within one early-death window)...
    assert time.monotonic() - started < 30
    # ...and gave the signal handlers it took back to whoever had them.
    assert signal.getsignal(signal.SIGINT) is before


SUPERVISE_SLEEPERS = (
    "import functools, sys, time; from bridge.workers import Supervisor; "
    "sys.exit(Supervisor(2, functools.partial(time.sleep, 120)).run())"
)


def test_sigterm_stops_the_supervisor_and_every_worker() -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISE_SLEEPERS])
    try:
        deadline = time.monotonic() + 30
        while len(_workers(supervisor.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        workers = _workers(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def _workers(pid: int) -> set[int]:
    """The worker processes of supervisor `pid` (multiprocessing also starts a resource
    tracker beside them, which is not one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            worker = stat != "" and b"spawn_main" in (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if worker and int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found
