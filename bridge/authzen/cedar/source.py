"""Where things are in store files, for messages that name a file and a line.

cedarpy reports parse and validation problems without positions, so the bridge finds the
policy statements (and the elements of `entities.json`) itself and checks each one alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy's text and the line (1-based) and column where it starts."""

    text: str
    line: int
    column: int


def split_policies(text: str) -> list[Statement]:
    """The policy statements of a Cedar file, in order.

    A statement ends at a `;` outside strings, comments and brackets. Text after the last `;`
    that is more than white space and comments counts as a final (broken) statement, so that
    a missing semicolon is still reported where it happened.
    """
    statements: list[Statement] = []
    depth = 0
    start: int | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if start is None and not ch.isspace():
            start = i
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0 and start is not None:
            statements.append(_statement(text, start, i + 1))
            start = None
        i += 1
    if start is not None:
        statements.append(_statement(text, start, n))
    return statements


def _skip_string(text: str, i: int) -> int:
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return i


def _statement(text: str, start: int, end: int) -> Statement:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Statement(text[start:end], line, column)


def line_of_offset(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def array_element_lines(text: str) -> list[int]:
    """Line of each element of a top-level JSON array (empty if the text is not one)."""
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "[":
        return []
    lines: list[int] = []
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] != "]":
        lines.append(line_of_offset(text, i))
        try:
            _, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return lines
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
    return lines


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def find_word_line(text: str, word: str) -> int | None:
    """Line of the first occurrence of `word`, used to place schema errors that name a token."""
    if not word:
        return None
    found = re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text)
    return None if found is None else line_of_offset(text, found.start())
