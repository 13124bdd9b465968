"""The walkthroughs run as written, against `bridge serve` over real HTTP on loopback.

Each walkthrough (README.md's, and every `docs/walkthroughs/*.md`) gets a fresh bridge: the
demo configuration of the shipped bridge.toml (`write_demo_config`), written to a temporary
folder, served by `bridge serve` in its own process on a free loopback port, with
`server.public_url` set to that port, as `make run` serves bridge.toml.

How a walkthrough marks what is run and what is checked:

- a fenced block whose info string is `sh run` holds commands to run. The blocks of one
  document run in order in one bash shell, so that variables and functions set by one block
  are there for the next (as in the reader's terminal), with standard input closed, in the
  folder of the test configuration (which holds `bridge.toml`, as the repository's folder
  does for the reader);
- the next fenced block after a `sh run` block, if its info string ends with the word
  `output` (`json output`, `text output`), is what that block prints. Prose may stand
  between the two. A `sh run` block without such a block must print nothing;
- in commands and outputs, `http://127.0.0.1:8080` (where `make run` serves) stands for the
  test server's URL, and `.venv/bin/bridge` for the `bridge` command of the interpreter
  running the tests;
- outputs are compared line by line, trailing blanks ignored. In an expected output, `…`
  stands for any run of characters within one line: it is how a walkthrough shows values
  that differ on every run (tokens, codes, ids, key material, timestamps);
- `sh run retry` marks a step that the text says takes the bridge a moment (the deferred
  token after an approval): the block is run again, for at most RETRY_SECONDS, until its
  output matches. Only idempotent steps may be marked so;
- every block must exit with status 0 and write nothing to standard error, and after the
  first `##` heading every `sh` block must be a `sh run` block, so that no shown command is
  left untested.
"""

from __future__ import annotations

import difflib
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from bridge.settings import Settings, load_settings
from tests.conftest import REPO, bridge_process, free_port, write_demo_config

README = REPO / "README.md"
WALKTHROUGHS = [README, *sorted((REPO / "docs" / "walkthroughs").glob("*.md"))]
DEMO_URL = "http://127.0.0.1:8080"
BRIDGE_COMMAND = ".venv/bin/bridge"
ELLIPSIS = "…"
BLOCK_SECONDS = 30.0
RETRY_SECONDS = 10.0
END = "__walkthrough_block_end__"


@dataclass(frozen=True)
class Block:
    info: list[str]
    text: str
    line: int  # of the opening fence, 1-based


@dataclass(frozen=True)
class Step:
    commands: str
    expected: str | None
    retry: bool
    line: int


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks (``` fences at the start of a line), in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    n = 0
    while n < len(lines):
        if lines[n].startswith("```"):
            start, info = n, lines[n][3:].split()
            n += 1
            while n < len(lines) and lines[n] != "```":
                n += 1
            if n == len(lines):
                raise AssertionError(f"unclosed code block at line {start + 1}")
            blocks.append(Block(info, "\n".join(lines[start + 1 : n]), start + 1))
        n += 1
    return blocks


def steps(markdown: str) -> list[Step]:
    """The `sh run` blocks, each with the output block that follows it (if any)."""
    blocks = fenced_blocks(markdown)
    found: list[Step] = []
    for n, block in enumerate(blocks):
        if block.info[:2] == ["sh", "run"]:
            unknown = set(block.info[2:]) - {"retry"}
            assert not unknown, f"line {block.line}: unknown marks {sorted(unknown)}"
            after = blocks[n + 1] if n + 1 < len(blocks) else None
            shown = after.text if after and after.info[-1:] == ["output"] else None
            found.append(Step(block.text, shown, "retry" in block.info, block.line))
        elif block.info[-1:] == ["output"]:
            before = blocks[n - 1] if n else None
            assert before and before.info[:2] == ["sh", "run"], (
                f"line {block.line}: an output block must follow a `sh run` block"
            )
    return found


def matches(expected: str, actual: str) -> bool:
    want, got = expected.rstrip().splitlines(), actual.rstrip().splitlines()
    if len(want) != len(got):
        return False
    for pattern, line in zip(want, got, strict=True):
        regex = "[^\n]*?".join(re.escape(part) for part in pattern.rstrip().split(ELLIPSIS))
        if not re.fullmatch(regex, line.rstrip()):
            return False
    return True


class Shell:
    """One bash process; `run` sends it a block and collects what the block printed."""

    def __init__(self, cwd: Path) -> None:
        # The reader's shell, less what would change what curl or bash do here: proxies
        # (the server is on loopback), a ~/.curlrc, a BASH_ENV start-up file.
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.lower().endswith("_proxy") and name not in ("BASH_ENV", "ENV")
        }
        env.update(PYTHONPATH=str(REPO), LC_ALL="C.UTF-8", HOME=str(cwd))
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self._out: queue.Queue[str] = queue.Queue()
        self._err: queue.Queue[str] = queue.Queue()
        for stream, lines in ((self._proc.stdout, self._out), (self._proc.stderr, self._err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)

    @staticmethod
    def _collect(lines: queue.Queue[str], deadline: float) -> list[str]:
        """Lines up to and with the end marker, which always starts a line of its own."""
        got: list[str] = []
        while not got or not got[-1].startswith(END):
            try:
                got.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"the block did not finish in time; so far: {got}") from None
        return got

    def run(self, commands: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of `commands`, run in this shell."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(
            f"{{\n{commands}\n}} < /dev/null\n"
            f"printf '\\n{END} %s\\n' \"$?\"; printf '\\n{END}\\n' >&2\n"
        )
        self._proc.stdin.flush()
        deadline = time.monotonic() + BLOCK_SECONDS
        out = self._collect(self._out, deadline)
        err = self._collect(self._err, deadline)
        status = int(out[-1].split()[1])
        return status, "".join(out[:-1]), "".join(err[:-1]).strip()

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    running = Shell(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _substitute(text: str, url: str) -> str:
    bridge = f"{shlex.quote(sys.executable)} -m bridge.cli"
    return text.replace(DEMO_URL, url).replace(BRIDGE_COMMAND, bridge)


def _where(doc: Path, step: Step) -> str:
    return f"{doc.relative_to(REPO)}:{step.line}"


@pytest.mark.parametrize("doc", WALKTHROUGHS, ids=lambda p: p.name)
def test_walkthrough_runs_as_written(doc: Path, tmp_path: Path, shell: Shell) -> None:
    todo = steps(doc.read_text(encoding="utf-8"))
    assert any(s.expected for s in todo), f"{doc.name} shows no checked output"
    port = free_port()
    config = write_demo_config(tmp_path, public_url=f"http://127.0.0.1:{port}", port=port)
    with bridge_process(config, port) as server:
        url: str = server.url  # type: ignore[attr-defined]
        for step in todo:
            commands = _substitute(step.commands, url)
            expected = "" if step.expected is None else _substitute(step.expected, url)
            deadline = time.monotonic() + RETRY_SECONDS
            while True:
                status, out, err = shell.run(commands)
                done = status == 0 and not err and matches(expected, out)
                if done or not step.retry or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert (status, err) == (0, ""), f"{_where(doc, step)}: {err or status}"
            diff = "\n".join(
                difflib.unified_diff(
                    expected.splitlines(),
                    out.rstrip().splitlines(),
                    "shown",
                    "printed",
                    lineterm="",
                )
            )
            assert matches(expected, out), f"{_where(doc, step)} prints otherwise:\n{diff}"


@pytest.mark.parametrize("doc", WALKTHROUGHS, ids=lambda p: p.name)
def test_every_shown_command_is_run(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    heading = re.search(r"^## ", text, flags=re.MULTILINE)
    assert heading, f"{doc.name} has no `##` heading"
    first_line = text[: heading.start()].count("\n") + 1
    unrun = [
        b.line
        for b in fenced_blocks(text)
        if b.line > first_line and b.info[:1] == ["sh"] and b.info[1:2] != ["run"]
    ]
    assert not unrun, f"{doc.name}: `sh` blocks not marked `run` at lines {unrun}"


def test_the_walkthroughs_config_is_the_shipped_one_but_for_the_server(tmp_path: Path) -> None:
    """The walkthroughs tell the reader to use `make run`, so the configuration they are
    tested with must be bridge.toml's, whatever port the user has set there."""
    shipped = load_settings(REPO / "bridge.toml")
    ours = load_settings(write_demo_config(tmp_path, port=free_port()))

    def view(settings: Settings) -> dict[str, Any]:
        dump = settings.model_dump(exclude={"server"})
        dump["stores"] = {n: settings.store_path(n).resolve() for n in settings.stores}
        oauth = dump["oauth"]
        oauth["profiles_dir"] = settings.resolve(settings.oauth.profiles_dir).resolve()
        oauth["clients_file"] = settings.resolve(settings.oauth.clients_file).read_bytes()
        return dump

    assert list(ours.stores) == list(shipped.stores)
    assert view(ours) == view(shipped)


def test_matching_rules() -> None:
    assert matches('{"a": "…", "b": 1}', '{"a": "xyz", "b": 1}\n')
    assert matches("x: …\n", "x: 1\n\n")
    assert not matches('{"a": "…", "b": 1}', '{"a": "xyz", "b": 2}')
    assert not matches("one\ntwo", "one")
    assert not matches("…", "a\nb")
    assert not matches("", "something")
