"""The `bridge` command: `serve` and `check`."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .settings import (
    DEFAULT_CONFIG,
    STORE_NAME_PATTERN,
    ConfigError,
    Settings,
    StoreSettings,
    load_settings,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge", description="AuthZEN Bridge")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bridge")
    _config_option(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument(
        "--policy-store",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the store in DIR as NAME (repeatable; replaces a configured store)",
    )

    check = commands.add_parser("check", help="validate configuration and policy stores")
    _config_option(check)

    args = parser.parse_args(argv)
    settings = _settings(args)
    if settings is None:
        return 1
    if args.command == "check":
        return _check(settings)
    return _serve(settings, args)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"TOML configuration (default: ./{DEFAULT_CONFIG} when present, else built-ins)",
    )


def _settings(args: argparse.Namespace) -> Settings | None:
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for spec in getattr(args, "policy_store", []):
        name, sep, folder = spec.partition("=")
        if not sep or not re.match(STORE_NAME_PATTERN, name) or not folder:
            print(
                f"--policy-store expects NAME=DIR with NAME like 'todo' "
                f"(lowercase letters, digits, - and _), got {spec!r}",
                file=sys.stderr,
            )
            return None
        settings.stores[name] = StoreSettings(path=Path(folder).resolve())
    return settings


def _check(settings: Settings) -> int:
    from .app import load_stores
    from .authzen.cedar.store import StoreLoadError

    try:
        stores = load_stores(settings)
    except StoreLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    for name, store in stores.items():
        print(f"store {name}: {len(store.policies)} policies, {len(store.entities)} entities")
    print("configuration and policy stores are valid")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .authzen.cedar.store import StoreLoadError

    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app = create_app(settings)
    except StoreLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    uvicorn.run(
        app,
        host=args.host or settings.server.host,
        port=args.port if args.port is not None else settings.server.port,
        log_level=settings.server.log_level,
        access_log=settings.server.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
