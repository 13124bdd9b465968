"""Housekeeping: the periodic chores each part declares (expiring what is due, purging what
no longer works, reading the status of remote access requests), run by one loop per process.

A chore that fails is logged and tried again on its next turn: a dead sweeper would silently
stop expiring deferrals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("bridge.housekeeping")

# How often the loop turns.
PASS_SECONDS = 5.0


@dataclass(frozen=True)
class Chore:
    name: str
    run: Callable[[], Awaitable[object]]
    # Runs on every n-th pass only (whole-table purges need not run every few seconds).
    every_passes: int = 1


async def run_forever(chores: Sequence[Chore], pass_seconds: float = PASS_SECONDS) -> None:
    passes = 0
    while True:
        await asyncio.sleep(pass_seconds)
        passes += 1
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
