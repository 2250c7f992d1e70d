"""`python -m tiaojie.console`: run the web console, or manage its accounts.

    python -m tiaojie.console add-account --username U --role desk --county 371302 --name 窗口
    python -m tiaojie.console disable-account --username U      (its sessions end at once)
    python -m tiaojie.console enable-account --username U
    python -m tiaojie.console set-password --username U         (asked for, twice)
    python -m tiaojie.console change-access --username U --role centre --county 371302 [...]

Passwords are asked for, never taken from the command line; production deployments have
no demo accounts and create theirs this way. Every change but enabling ends the
account's open sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role

MIN_PASSWORD = 12
COMMANDS = ("add-account", "disable-account", "enable-account", "set-password", "change-access")
STAFF_ROLES = [r.value for r in Role if r not in (Role.CITIZEN, Role.AGENCY)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        sys.exit(manage(sys.argv[1], sys.argv[2:]))
    from tiaojie.console.app import create_app
    from tiaojie.runtime.host import serve

    settings = ConsoleSettings()
    serve(create_app(settings), settings)


def _access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=STAFF_ROLES)
    parser.add_argument("--county", action="append", default=[], required=True, help="repeatable")
    parser.add_argument("--mediator-id")
    parser.add_argument("--organisation-id")


def _new_password() -> str | None:
    password = getpass.getpass("password: ")
    if len(password) < MIN_PASSWORD or password != getpass.getpass("again: "):
        print(f"passwords differ or are shorter than {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def manage(command: str, argv: list[str]) -> int:
    """One account command; the exit status says whether it changed something."""
    parser = argparse.ArgumentParser(prog=f"tiaojie-console {command}")
    parser.add_argument("--username", required=True)
    if command == "add-account":
        parser.add_argument("--name", required=True, help="display name, e.g. 兰山区受理窗口")
    if command in ("add-account", "change-access"):
        _access_arguments(parser)
    args = parser.parse_args(argv)
    password = None
    if command in ("add-account", "set-password"):
        password = _new_password()
        if password is None:
            return 2
    return asyncio.run(_run(command, args, password))


async def _run(command: str, args: argparse.Namespace, password: str | None) -> int:
    from tiaojie.console.metrics import ConsoleMetrics
    from tiaojie.console.repository import ConsoleRepository
    from tiaojie.console.service import AccountSpec, ConsoleService, PasswordRefused
    from tiaojie.runtime.clock import SystemClock
    from tiaojie.runtime.metrics import new_registry
    from tiaojie.runtime.mongo import make_client

    settings = ConsoleSettings()
    client = make_client(settings, app_name="tiaojie-console-cli")
    try:
        service = ConsoleService(
            repository=ConsoleRepository(client[settings.database(settings.database_name)]),
            settings=settings,
            clock=SystemClock(),
            metrics=ConsoleMetrics(new_registry()),
        )
        access: dict[str, Any] = {}
        if command in ("add-account", "change-access"):
            access = {
                "role": Role(args.role),
                "counties": list(args.county),
                "mediator_id": args.mediator_id,
                "organisation_id": args.organisation_id,
            }
        actions: dict[str, Callable[[], Awaitable[bool]]] = {
            "add-account": lambda: service.create_account(
                spec=AccountSpec(
                    args.username,
                    args.name,
                    access["role"],
                    tuple(access["counties"]),
                    mediator_id=access["mediator_id"],
                    organisation_id=access["organisation_id"],
                ),
                password=password or "",
            ),
            "disable-account": lambda: service.disable_account(username=args.username),
            "enable-account": lambda: service.enable_account(username=args.username),
            "set-password": lambda: service.set_password(username=args.username, password=password or ""),
            "change-access": lambda: service.change_access(username=args.username, **access),
        }
        try:
            changed = await actions[command]()
        except PasswordRefused as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 2
    finally:
        await client.close()
    if command == "add-account":
        print("created" if changed else "an account with this username exists")
    else:
        print("done" if changed else "no such account")
    return 0 if changed else 1


if __name__ == "__main__":
    main()
