"""`bridge policy format`: Cedar's own formatter over every policy file of a store.

One layout (line width 80, indent 2, as `policies/README.md` asks) keeps diffs of policy
changes about the rules, not the whitespace. Only `*.cedar` files are formatted: Cedar has no
formatter for schemas, and JSON files are left as their authors wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cedarpy

from ..authzen.cedar.store import StoreProblem, store_files
from .locate import PolicyFile

LINE_WIDTH = 80
INDENT = 2


@dataclass(frozen=True)
class FormatResult:
    changed: list[str]  # files that are (or, with check, would be) reformatted
    unchanged: int
    problems: list[StoreProblem]


def format_store(path: Path, *, check: bool) -> FormatResult:
    if not path.is_dir():
        return FormatResult([], 0, [StoreProblem(str(path), None, "not a folder")])
    changed: list[str] = []
    unchanged = 0
    problems: list[StoreProblem] = []
    for file in (f for f in store_files(path) if f.suffix == ".cedar"):
        rel = str(path / file.relative_to(path))
        text = file.read_text(encoding="utf-8")
        source = PolicyFile.read(rel, text)
        if not source.statements:
            unchanged += 1  # only comments: the formatter would only move them
            continue
        try:
            formatted = cedarpy.format_policies(text, LINE_WIDTH, INDENT)
        except ValueError as exc:
            problems.append(_unparsable(source, str(exc)))
            continue
        if formatted == text:
            unchanged += 1
            continue
        changed.append(rel)
        if not check:
            file.write_text(formatted, encoding="utf-8")
    return FormatResult(changed, unchanged, problems)


def _unparsable(source: PolicyFile, message: str) -> StoreProblem:
    """The formatter's error at the first statement that does not parse on its own."""
    for statement in source.statements:
        try:
            cedarpy.PolicySet.from_str(statement.text)
        except ValueError as exc:
            return StoreProblem(source.rel, statement.line, str(exc), statement.column)
    return StoreProblem(source.rel, 1, message, 1)
