"""Housekeeping: the periodic chores each part declares (expiring what is due, purging what
no longer works, reading the status of remote access requests).

Every process runs the loop, but only the one holding the `housekeeping` lease in the shared
store does the chores: with `bridge serve --workers N`, or N replicas on one database, they
are done once per pass rather than N times. The holder renews the lease on every pass; when
it dies, another process takes over once the lease has run out (a few passes).

A chore that fails is logged and tried again on its next turn: a dead sweeper would silently
stop expiring deferrals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .metrics import HOUSEKEEPING_PASSES
from .store.contract import LeaseStore

log = logging.getLogger("bridge.housekeeping")

# How often the loop turns.
PASS_SECONDS = 5.0
# The lease outlives a pass or two missed by a busy holder before another process takes over.
LEASE_PASSES = 3
LEASE_NAME = "housekeeping"


@dataclass(frozen=True)
class Chore:
    name: str
    run: Callable[[], Awaitable[object]]
    # Runs on every n-th pass only (whole-table purges need not run every few seconds).
    every_passes: int = 1


def holder_name() -> str:
    """This process among the others sharing the store (host and pid, for the operator)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def run_forever(
    chores: Sequence[Chore],
    leases: LeaseStore,
    pass_seconds: float = PASS_SECONDS,
    holder: str | None = None,
) -> None:
    holder = holder or holder_name()
    passes = 0
    while True:
        await asyncio.sleep(pass_seconds)
        try:
            held = await leases.lease_hold(
                LEASE_NAME, holder, time.time(), pass_seconds * LEASE_PASSES
            )
        except Exception:  # the store is down: try again next pass
            log.exception("housekeeping: cannot reach the store for the lease")
            continue
        if held:
            passes += 1
            HOUSEKEEPING_PASSES.inc()
            await run_pass(chores, passes)


async def run_pass(chores: Sequence[Chore], passes: int) -> None:
    """One pass: every chore due on pass number `passes`, in order."""
    for chore in chores:
        if passes % chore.every_passes:
            continue
        try:
            await chore.run()
        except Exception:  # keep sweeping; a logged failure beats a dead sweeper
            log.exception("housekeeping: %s failed", chore.name)
