"""Secrets kept in files (`storage.password_file`, `metrics.token_file`): the first line,
stripped; a file others may read is reported, since the secret is only as safe as the file."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

log = logging.getLogger("bridge")


class SecretFileUnusable(Exception):
    """The file cannot be read, or holds no secret; the message names the option."""


def read_secret_file(path: Path, option: str) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SecretFileUnusable(f"cannot read {option} {path}: {reason}") from None
    if mode & 0o077:
        log.warning("%s %s is readable by others (mode %o): chmod 600 it", option, path, mode)
    secret = text.splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise SecretFileUnusable(f"{option} {path} is empty")
    return secret
