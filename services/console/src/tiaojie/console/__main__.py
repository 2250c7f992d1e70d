"""`python -m tiaojie.console`: run the web console.

`python -m tiaojie.console add-account --username U --role desk --county 371302 --name 窗口`
creates an account (the password is asked for, never taken from the command line);
production deployments have no demo accounts and create theirs this way.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from tiaojie.console.settings import ConsoleSettings
from tiaojie.contracts.common import Role

MIN_PASSWORD = 12


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "add-account":
        sys.exit(add_account(sys.argv[2:]))
    from tiaojie.console.app import create_app
    from tiaojie.runtime.host import serve

    settings = ConsoleSettings()
    serve(create_app(settings), settings)


def add_account(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tiaojie-console add-account")
    parser.add_argument("--username", required=True)
    parser.add_argument("--name", required=True, help="display name, e.g. 兰山区受理窗口")
    parser.add_argument(
        "--role", required=True, choices=[r.value for r in Role if r not in (Role.CITIZEN, Role.AGENCY)]
    )
    parser.add_argument("--county", action="append", default=[], required=True, help="repeatable")
    parser.add_argument("--mediator-id")
    parser.add_argument("--organisation-id")
    args = parser.parse_args(argv)
    password = getpass.getpass("password: ")
    if len(password) < MIN_PASSWORD or password != getpass.getpass("again: "):
        print(f"passwords differ or are shorter than {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    return asyncio.run(_create(args, password))


async def _create(args: argparse.Namespace, password: str) -> int:
    from tiaojie.console.metrics import ConsoleMetrics
    from tiaojie.console.repository import ConsoleRepository
    from tiaojie.console.service import AccountSpec, ConsoleService
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
        spec = AccountSpec(
            args.username,
            args.name,
            Role(args.role),
            tuple(args.county),
            mediator_id=args.mediator_id,
            organisation_id=args.organisation_id,
        )
        created = await service.create_account(spec=spec, password=password)
    finally:
        await client.close()
    print("created" if created else "an account with this username exists")
    return 0 if created else 1


if __name__ == "__main__":
    main()
