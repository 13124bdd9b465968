"""Line and column of things inside store files.

cedarpy reports no positions, and `load_store` places a problem only at the start of the
policy statement (or of the `entities.json` element) it concerns. Authors fix problems
faster when the editor jumps to the annotation, the attribute or the JSON member at fault,
so this module finds those inside the text: annotations and quoted names in a statement,
members anywhere in a JSON document.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from dataclasses import dataclass

from ..authzen.cedar.source import Statement, split_policies

Position = tuple[int, int]
"""(line, column), both 1-based."""

JSONPath = tuple[str | int, ...]


class TextIndex:
    """Offsets of a text as lines and columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> Position:
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def end(self) -> Position:
        """Just after the last character that is not white space (for "unexpected end")."""
        return self.position(len(self.text.rstrip()))

    def find_word(self, word: str) -> Position | None:
        """The first whole-word `word` anywhere in the text."""
        found = _word(word).search(self.text) if word else None
        return None if found is None else self.position(found.start())

    def word(self, line: int, word: str) -> Position:
        """The first whole-word `word` on `line`, or the line's first column."""
        if not 1 <= line <= len(self._starts):
            return line, 1
        start = self._starts[line - 1]
        end = self._starts[line] if line < len(self._starts) else len(self.text)
        found = _word(word).search(self.text, start, end) if word else None
        return (line, 1) if found is None else self.position(found.start())


def _word(token: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\"]){re.escape(token)}(?![\w\"])")


def code_only(text: str) -> str:
    """`text` with `//` comments blanked (same length), so searches skip commented-out code."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class PolicyFile:
    """One `*.cedar` file: its text and statements, for placing problems inside them."""

    rel: str
    text: str
    statements: list[Statement]

    @staticmethod
    def read(rel: str, text: str) -> PolicyFile:
        return PolicyFile(rel, text, split_policies(text))

    def statement_at(self, line: int | None) -> Statement | None:
        return next((s for s in self.statements if s.line == line), None)

    def offset_position(self, statement: Statement, offset: int) -> Position:
        before = statement.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return statement.line, statement.column + offset
        return statement.line + newlines, offset - before.rfind("\n")

    def annotation(self, statement: Statement, name: str) -> Position:
        """Where `@name` is written in the statement (its start when it is not found)."""
        found = re.search(rf"@{re.escape(name)}\b", code_only(statement.text))
        return self.offset_position(statement, found.start() if found else 0)

    def token(self, statement: Statement, token: str) -> Position | None:
        """The first use of a name a message quotes: `.name` (attribute access) first, then
        the name as a whole word; comments are skipped."""
        code = code_only(statement.text)
        access = re.search(rf"\.\s*({re.escape(token)})(?![\w\"])", code)
        if access is not None:
            return self.offset_position(statement, access.start(1))
        word = _word(token).search(code)
        return None if word is None else self.offset_position(statement, word.start())


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def json_members(text: str) -> dict[JSONPath, Position]:
    """Where each value of a (valid) JSON document is, by path: object members at their key,
    array elements at their first character, the document at `()`.

    Returns what it found so far when the text is not valid JSON."""
    index = TextIndex(text)
    found: dict[JSONPath, Position] = {}

    def skip(i: int) -> int:
        match = _WS.match(text, i)
        return match.end() if match else i

    def value(i: int, path: JSONPath) -> int:
        i = skip(i)
        found.setdefault(path, index.position(i))
        if text.startswith("{", i):
            i = skip(i + 1)
            while i < len(text) and text[i] != "}":
                key_at = i
                key, i = _DECODER.raw_decode(text, i)
                found[(*path, key)] = index.position(key_at)
                i = skip(skip(i) + 1)  # past the colon
                i = skip(value(i, (*path, key)))
                i = skip(i + 1) if text.startswith(",", i) else i
            return i + 1
        if text.startswith("[", i):
            i, n = skip(i + 1), 0
            while i < len(text) and text[i] != "]":
                i = skip(value(i, (*path, n)))
                i = skip(i + 1) if text.startswith(",", i) else i
                n += 1
            return i + 1
        end: int = _DECODER.raw_decode(text, i)[1]  # a string, number or literal
        return end

    with contextlib.suppress(ValueError, IndexError):
        value(0, ())
    return found
