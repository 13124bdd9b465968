"""The `bridge policy` command and its four subcommands.

`register` adds `policy` to the `bridge` command; `main` runs the same subcommands on their
own (`python -m bridge.policy …`). Problems are printed to stdout as `file:line:column:
message` (a folder-level problem has no position), so editors and CI annotate them; every
subcommand exits 1 when anything is wrong and 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ..authzen.cedar.store import StoreProblem

# The engine is imported by each command, not here: `register` runs for every `bridge`
# invocation, and `bridge serve` should not pay for the authoring tools.

Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `policy` to the `bridge` command; dispatch with `run(args)`."""
    policy = subparsers.add_parser(
        "policy", help="validate, format, test and explain policy stores"
    )
    _add_commands(policy)


def run(args: argparse.Namespace) -> int:
    command: Command = args.policy_run
    return command(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge policy", description="Policy store authoring")
    _add_commands(parser)
    return run(parser.parse_args(argv))


def _add_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate", help="parse and strictly validate stores, and check the authoring rules"
    )
    _stores(validate)
    validate.set_defaults(policy_run=_validate)

    fmt = commands.add_parser("format", help="format every policy file with Cedar's formatter")
    fmt.add_argument(
        "--check", action="store_true", help="change nothing; list the files that would change"
    )
    _stores(fmt)
    fmt.set_defaults(policy_run=_format)

    test = commands.add_parser("test", help="run the test cases of stores (their tests.json)")
    _stores(test)
    test.set_defaults(policy_run=_test)

    explain = commands.add_parser("explain", help="explain the store's decision for a request")
    explain.add_argument("store", type=Path, metavar="STORE", help="store folder")
    explain.add_argument(
        "request",
        nargs="?",
        default="-",
        metavar="REQUEST.json",
        help="an evaluation or evaluations request (default: read stdin)",
    )
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(policy_run=_explain)


def _stores(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stores", nargs="+", type=Path, metavar="STORE", help="store folder")


def _print_problems(problems: Sequence[StoreProblem], out: TextIO | None = None) -> None:
    for problem in problems:
        print(problem, file=out or sys.stdout)


def _validate(args: argparse.Namespace) -> int:
    from .validate import validate_store

    total = 0
    for path in args.stores:
        problems = validate_store(path)
        _print_problems(problems)
        if not problems:
            print(f"{path}: valid")
        total += len(problems)
    if total:
        print(f"{total} problem(s) found")
    return 1 if total else 0


def _format(args: argparse.Namespace) -> int:
    from .formatting import format_store

    changed: list[str] = []
    unchanged = 0
    problems: list[StoreProblem] = []
    for path in args.stores:
        result = format_store(path, check=args.check)
        for file in result.changed:
            print(f"{'would reformat' if args.check else 'reformatted'} {file}")
        changed += result.changed
        unchanged += result.unchanged
        problems += result.problems
    _print_problems(problems)
    verb = "would be reformatted" if args.check else "reformatted"
    print(f"{len(changed)} file(s) {verb}, {unchanged} already formatted")
    if problems:
        print(f"{len(problems)} file(s) could not be formatted")
    return 1 if problems or (args.check and changed) else 0


def _test(args: argparse.Namespace) -> int:
    from ..authzen.cedar.store import StoreLoadError, load_store
    from .cases import CasesError, load_cases
    from .runner import run_cases

    passed = failed = broken = 0
    for path in args.stores:
        try:
            store = load_store(path.name, path)
            cases = load_cases(path)
        except (StoreLoadError, CasesError) as exc:
            _print_problems(exc.problems)
            broken += 1
            continue
        for outcome in asyncio.run(run_cases(store, cases)):
            if outcome.passed:
                passed += 1
            else:
                failed += 1
                print("\n".join(outcome.report()))
    print(f"{passed} passed, {failed} failed")
    if broken:
        print(f"{broken} store(s) could not be tested")
    return 1 if failed or broken else 0


def _explain(args: argparse.Namespace) -> int:
    from ..authzen.cedar.store import StoreLoadError, load_store
    from ..authzen.errors import AuthZENError
    from .explain import Explainer, refused

    try:
        store = load_store(args.store.name, args.store)
    except StoreLoadError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    source = "stdin" if args.request == "-" else args.request
    try:
        text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text("utf-8")
        body = json.loads(text)
    except OSError as exc:
        print(f"{source}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", file=sys.stderr)
        return 1
    if not isinstance(body, dict):
        print(f"{source}: a request must be a JSON object", file=sys.stderr)
        return 1
    try:
        explained = asyncio.run(Explainer(store).explain(body))
    except AuthZENError as exc:
        print(f"{source}: {refused(exc)}", file=sys.stderr)
        return 1
    if args.json:
        single = len(explained) == 1 and not explained[0][0]
        data = (
            explained[0][1].to_json()
            if single
            else {"evaluations": [e.to_json() for _, e in explained]}
        )
        print(json.dumps(data, indent=2))
    else:
        for label, explanation in explained:
            indent = "  " if label else ""
            if label:
                print(f"{label}:")
            print("\n".join(indent + line for line in explanation.lines()))
    return 1 if any(e.decision is None for _, e in explained) else 0
