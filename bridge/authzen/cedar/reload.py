"""Hot reload of policy stores: validate first, swap atomically, keep the last good set.

A watcher polls each store folder's file list, sizes and modification times (cheap, and
needs no file-system notification support). On a change it loads the whole store in a
worker thread; only a store that loaded completely replaces the current one. A failed load
is kept as the store's `reload_error` (shown by `/readyz` and logged) until a later load of
the folder succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .store import PolicyStore, StoreLoadError, load_store, store_files

log = logging.getLogger("bridge.reload")

Signature = tuple[tuple[str, int, int], ...]


class StoreHolder:
    """The current snapshot of one store; a reload replaces it in one assignment."""

    def __init__(self, store: PolicyStore) -> None:
        self.current = store
        self.reload_error: str | None = None
        self.signature: Signature = signature(store.path)


def signature(path: Path) -> Signature:
    out = []
    for file in store_files(path):
        try:
            stat = file.stat()
        except OSError:
            continue
        out.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


async def reload_if_changed(holder: StoreHolder) -> bool:
    """Load the store again if its files changed; True when a new snapshot was swapped in."""
    store = holder.current
    seen = await asyncio.to_thread(signature, store.path)
    if seen == holder.signature:
        return False
    holder.signature = seen
    try:
        fresh = await asyncio.to_thread(load_store, store.name, store.path)
    except StoreLoadError as exc:
        holder.reload_error = str(exc)
        log.error("store %r not reloaded, keeping the last good one:\n%s", store.name, exc)
        return False
    except OSError as exc:
        holder.reload_error = f"{store.path}: {exc.strerror}"
        log.error("store %r not reloaded: %s", store.name, holder.reload_error)
        return False
    holder.current = fresh
    holder.reload_error = None
    log.info("store %r reloaded: %d policies", store.name, len(fresh.policies))
    return True


async def watch(holders: list[StoreHolder], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for holder in holders:
            try:
                await reload_if_changed(holder)
            except Exception:  # a watcher that dies silently would be worse than a logged error
                log.exception("reload check failed for %r", holder.current.name)
