"""The `bridge` command: `serve`, `check`, and the commands of the parts (`clients`, `keys`,
`policy`, `approvers`, `approvals`, `audit`, `db`)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__, demo_approvers
from .access_log import RedactQueryValues
from .access_requests import cli as access_requests_cli
from .approval_templates import templates_problems
from .authzen.cedar.store import PolicyStore, StoreLoadError
from .front_door import users_cli
from .front_door.sign_in_methods import sign_in_problems
from .metrics_endpoint import MULTIPROCESS_ENVIRONMENT, token_problems
from .notifications.assembly import problems as notification_problems
from .oauth import clients_cli, keys_cli
from .oauth.clients import ClientRegistry
from .oauth.obligations import handler_problems as obligation_handler_problems
from .oauth.registry_checks import client_problems
from .policy import cli as policy_cli
from .problems import Problem
from .rar import ProfileLoadError, ProfileSet, load_profiles
from .request_id import RequestIdLogFilter
from .settings import (
    DEFAULT_CONFIG,
    STORE_NAME_PATTERN,
    ConfigError,
    Settings,
    StoreSettings,
    load_settings,
)
from .store import cli as db_cli
from .workers import Listen, Supervisor, listening_socket


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge", description="AuthZEN Bridge")
    parser.add_argument("--version", action="version", version=f"AuthZEN Bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bridge")
    _config_option(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes on the one listening socket (overrides server.workers)",
    )
    serve.add_argument(
        "--policy-store",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the store in DIR as NAME (repeatable; replaces a configured store)",
    )

    check = commands.add_parser(
        "check", help="validate configuration, policy stores, profiles and clients"
    )
    _config_option(check)
    clients_cli.register(commands)
    users_cli.register(commands)
    keys_cli.register(commands)
    policy_cli.register(commands)
    demo_approvers.register(commands)
    access_requests_cli.register(commands)
    db_cli.register(commands)

    args = parser.parse_args(argv)
    if args.command == "policy":
        # Policy authoring works on store folders and needs no configuration.
        return policy_cli.run(args)
    settings = _settings(args)
    if settings is None:
        return 1
    if args.command == "clients":
        return clients_cli.run(args, settings)
    if args.command == "users":
        return users_cli.run(args, settings)
    if args.command == "keys":
        return keys_cli.run(args, settings)
    if args.command == "approvers":
        return demo_approvers.run(args, settings)
    if args.command == "db":
        return db_cli.run(args, settings)
    if args.command in access_requests_cli.COMMANDS:
        return asyncio.run(_with_store(settings, args))
    if args.command == "check":
        return _check(settings)
    return _serve(settings, args)


async def _with_store(settings: Settings, args: argparse.Namespace) -> int:
    """Run an access request command against the configured database, which must exist."""
    from .store.backends import SchemaBehind, database_exists, describe, store_for

    valid, _ = access_requests_cli.since_of(args)
    if not valid:
        print(f"bridge {args.command}: --since expects an RFC 3339 date-time", file=sys.stderr)
        return 2
    if not database_exists(settings):
        print(f"bridge {args.command}: no database at {describe(settings)}", file=sys.stderr)
        return 1
    store = store_for(settings, migrate=False)
    try:
        await store.open()
    except SchemaBehind as exc:
        print(f"bridge {args.command}: {exc}", file=sys.stderr)
        return 1
    try:
        return await access_requests_cli.run(args, store)
    finally:
        await store.close()


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
        # Replacing a configured store changes its folder only: its `auth` and other options
        # stay, so a store that needs PEP authentication is never opened up by accident.
        known = settings.stores.get(name)
        path = Path(folder).resolve()
        settings.stores[name] = (
            known.model_copy(update={"path": path})
            if known is not None
            else StoreSettings(path=path)
        )
    return settings


def _check(settings: Settings) -> int:
    loaded = _load_everything(settings)
    problems, stores = loaded.problems, loaded.stores
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    for name, store in stores.items():
        print(f"store {name}: {len(store.policies)} policies, {len(store.entities)} entities")
    print("configuration, policy stores, profiles and clients are valid")
    return 0


@dataclass
class _Loaded:
    problems: list[Problem]
    stores: dict[str, PolicyStore]
    profiles: ProfileSet | None


def _load_everything(settings: Settings) -> _Loaded:
    """Every problem of the stores, the profiles and the client registry, at once (and what
    loaded, so that `serve` does not parse it all a second time)."""
    from .authzen.assembly import load_stores

    problems: list[Problem] = []
    stores: dict[str, PolicyStore] = {}
    try:
        stores = load_stores(settings)
    except StoreLoadError as exc:
        problems.extend(exc.problems)
    try:
        profiles = load_profiles(settings.resolve(settings.oauth.profiles_dir), missing_ok=True)
    except ProfileLoadError as exc:
        problems.extend(exc.problems)
        profiles = None
    clients_file = settings.resolve(settings.oauth.clients_file)
    try:
        registry = ClientRegistry.load(clients_file, missing_ok=True)
    except ConfigError as exc:
        problems.extend(exc.problems)
    else:
        if profiles is not None:
            problems += client_problems(registry.clients(), profiles, str(clients_file))
    problems += token_problems(settings)
    problems += users_cli.users_file_problems(settings)
    problems += sign_in_problems(settings)
    problems += obligation_handler_problems(settings)
    problems += templates_problems([settings.store_path(name) for name in settings.stores])
    problems += notification_problems(settings)
    return _Loaded(problems, stores, profiles)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .serving import CoalescingHttpToolsProtocol

    _configure_logging(settings)
    loaded = _load_everything(settings)
    problems = loaded.problems
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    workers = args.workers if args.workers is not None else settings.server.workers
    if workers < 1:
        print(f"--workers expects at least 1, got {workers}", file=sys.stderr)
        return 1
    where = Listen(
        args.host or settings.server.host,
        args.port if args.port is not None else settings.server.port,
    )
    if workers > 1:
        return _serve_workers(workers, where, settings)
    uvicorn.run(
        create_app(settings, loaded.stores, loaded.profiles),
        host=where.host,
        port=where.port,
        log_level=settings.server.log_level,
        access_log=settings.server.access_log,
        http=CoalescingHttpToolsProtocol,  # an answer's head and body in one write
    )
    return 0


def _serve_workers(count: int, where: Listen, settings: Settings) -> int:
    if where.port == 0:
        print("--workers needs a fixed port (server.port or --port), not 0", file=sys.stderr)
        return 1
    try:  # an address another program holds fails here, once, rather than in every worker
        listening_socket(where).close()
    except OSError as exc:
        print(f"cannot listen on {where.host}:{where.port}: {exc.strerror}", file=sys.stderr)
        return 1
    # Where prometheus-client's multi-process mode keeps every worker's counters, private and
    # for as long as the supervisor runs; inherited by the workers, which read it at start.
    with tempfile.TemporaryDirectory(prefix="bridge-metrics-") as counters:
        os.environ[MULTIPROCESS_ENVIRONMENT] = counters
        return Supervisor(count, functools.partial(_worker, settings, where)).run()


def _worker(settings: Settings, where: Listen) -> None:
    """One worker of `bridge serve --workers N`: the supervisor's settings (command-line
    overrides applied), its own socket; it loads the stores and profiles itself."""
    import uvicorn

    from .app import create_app
    from .serving import CoalescingHttpToolsProtocol

    _configure_logging(settings)
    config = uvicorn.Config(
        create_app(settings),
        log_level=settings.server.log_level,
        access_log=settings.server.access_log,
        http=CoalescingHttpToolsProtocol,
    )
    uvicorn.Server(config).run(sockets=[listening_socket(where)])


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdLogFilter())
    # httpx logs every outgoing request at INFO: pings, callbacks and PDP calls are logged
    # by the bridge where they matter, without the full URLs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(RedactQueryValues())


if __name__ == "__main__":
    sys.exit(main())
