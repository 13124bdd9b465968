"""Tracebacks in the bridge's log, reduced to what a fix needs: where it escaped the bridge.

`bridge serve` logs an unhandled exception as a message line followed by Python's traceback
(possibly several, chained). Each traceback becomes one `Crash`: the exception, the last
frame inside the `bridge` package, and the innermost frame overall.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

_FRAME = re.compile(r'^\s*(?:\|\s*)?File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_START = re.compile(
    r"^\s*(?:\+\s*)?(?:\|\s*)?(?:Exception Group )?Traceback \(most recent call last\):"
)
_CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str

    def short(self, repo: Path) -> str:
        path = Path(self.file)
        try:
            shown = str(path.relative_to(repo))
        except ValueError:
            marker = "site-packages/"
            shown = self.file.split(marker, 1)[1] if marker in self.file else path.name
        return f"{shown}:{self.line} ({self.func})"


@dataclass(frozen=True)
class Crash:
    message: str  # the log line the traceback belongs to
    exception: str  # "TypeName: text" (text cut short)
    bridge_frame: Frame | None  # the last frame in bridge/
    innermost: Frame | None

    def key(self) -> tuple[str, str]:
        """What makes two crashes the same defect: exception type and where it escaped."""
        where = f"{self.bridge_frame.file}:{self.bridge_frame.line}" if self.bridge_frame else ""
        return self.exception.split(":", 1)[0], where


def parse(lines: Iterable[str], repo: Path) -> list[Crash]:
    """Every logged traceback; a chain ("the above exception was the direct cause of ...")
    counts once, as its last exception: the one that escaped."""
    crashes: list[Crash] = []
    bridge_pkg = str(repo / "bridge") + "/"
    message = ""
    frames: list[Frame] = []
    in_trace = chained = False
    for raw in lines:
        line = raw.rstrip("\n")
        text = line.strip().lstrip("|+ ").strip()
        if _START.match(line):
            in_trace, frames = True, []
            continue
        if not in_trace:
            if any(text.startswith(c) for c in _CHAINED):
                chained = True
            elif text:
                message, chained = text, False
            continue
        match = _FRAME.match(line)
        if match:
            frames.append(Frame(match["file"], int(match["line"]), match["func"].strip()))
            continue
        if not text or line.startswith((" ", "\t")) or text.startswith(("^", "~")):
            continue  # source lines and caret markers
        # The exception line ends this traceback.
        in_trace = False
        ours = [f for f in frames if f.file.startswith(bridge_pkg)]
        crash = Crash(
            message=message,
            exception=text[:300],
            bridge_frame=ours[-1] if ours else None,
            innermost=frames[-1] if frames else None,
        )
        if chained and crashes:
            if crash.bridge_frame is None:  # re-raised outside the bridge: keep the cause's
                crash = replace(crash, bridge_frame=crashes[-1].bridge_frame)
            crashes[-1] = crash
        else:
            crashes.append(crash)
        chained = False
    return crashes


def summarise(crashes: list[Crash]) -> list[tuple[Crash, int]]:
    """Distinct defects, most frequent first, each with how often it was logged."""
    counts = Counter(c.key() for c in crashes)
    first: dict[tuple[str, str], Crash] = {}
    for crash in crashes:
        first.setdefault(crash.key(), crash)
    return [(first[key], n) for key, n in counts.most_common()]
