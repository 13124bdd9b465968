"""Where each member of a JSON document is, so a profile problem can name its line.

`json.loads` gives no positions once parsing succeeded, and it silently keeps the last of
two equal member names. Profiles are written by hand, so a message that says "line 12" and
a refusal of duplicate names both matter; this small scanner walks the (already valid) text
once and records the line of every member's key and every array element.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]

JSONPath = tuple[str | int, ...]

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class MemberLines:
    """Line (1-based) of each member's key, and of each array element, by JSON path."""

    lines: dict[JSONPath, int] = field(default_factory=dict)
    duplicates: list[tuple[JSONPath, int]] = field(default_factory=list)

    def line_of(self, path: JSONPath) -> int | None:
        """The line of `path`, else of its nearest ancestor that has one."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def dotted(path: JSONPath) -> str:
    """`authzen.properties.amount_minor`, `schema.allOf[0]`: a path as people write it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def member_lines(text: str) -> MemberLines:
    """Scan `text`, which must already be valid JSON (`json.loads` accepted it)."""
    scanner = _Scanner(text)
    # Positions are best effort: a problem without a line is still reported.
    with contextlib.suppress(RecursionError, IndexError, ValueError):
        scanner.value(scanner.skip(0), ())
    return scanner.found


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.found = MemberLines()
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def skip(self, pos: int) -> int:
        match = _SPACE.match(self.text, pos)
        return pos if match is None else match.end()

    def value(self, pos: int, path: JSONPath) -> int:
        opener = self.text[pos]
        if opener == "{":
            return self._object(pos, path)
        if opener == "[":
            return self._array(pos, path)
        _, end = _DECODER.raw_decode(self.text, pos)
        return int(end)

    def _object(self, pos: int, path: JSONPath) -> int:
        pos = self.skip(pos + 1)
        if self.text[pos] == "}":
            return pos + 1
        seen: set[str] = set()
        while True:
            key_line = self.line(pos)
            key, pos = scanstring(self.text, pos + 1)
            member = (*path, key)
            if key in seen:
                self.found.duplicates.append((member, key_line))
            else:
                seen.add(key)
                self.found.lines[member] = key_line
            pos = self.skip(self.skip(pos) + 1)  # past the ':'
            pos = self.skip(self.value(pos, member))
            if self.text[pos] == "}":
                return pos + 1
            pos = self.skip(pos + 1)  # past the ','

    def _array(self, pos: int, path: JSONPath) -> int:
        pos = self.skip(pos + 1)
        if self.text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            element = (*path, index)
            self.found.lines.setdefault(element, self.line(pos))
            pos = self.skip(self.value(pos, element))
            if self.text[pos] == "]":
                return pos + 1
            pos = self.skip(pos + 1)
            index += 1
