"""The `tiaojie` command: run the local mesh, inspect it, issue development tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tiaojie.contracts.common import Role
from tiaojie.infra import procs
from tiaojie.infra.paths import Layout
from tiaojie.infra.servers import InfraError
from tiaojie.infra.stack import (
    SERVICES,
    Infra,
    external_urls,
    instance_name,
    ready,
    running_instances,
    service_port,
    start_service,
    stop_services,
    wait_ready,
)
from tiaojie.runtime.auth import SERVICE_AUDIENCES, NoSigningKey, issue_token, signer_for
from tiaojie.runtime.settings import RuntimeSettings

app = typer.Typer(help="Tiaojie (调解) local mesh: Kafka, FerretDB and the services.", no_args_is_help=True)
console = Console()


def parse_replicas(spec: str) -> dict[str, int]:
    """'intake=3,registry=2' -> {'intake': 3, 'registry': 2}; others default to 1."""
    counts = {s.name: 1 for s in SERVICES}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        if name not in counts or not value.isdigit() or not 1 <= int(value) <= 9:
            raise typer.BadParameter(f"bad replica spec {part!r} (service=1..9)")
        counts[name] = int(value)
    return counts


@app.command()
def up(
    replicas: Annotated[str, typer.Option(help="replicas per service, e.g. intake=3,registry=2")] = "",
    demo: Annotated[bool, typer.Option(help="load the Linyi demo registry")] = True,
    infra_only: Annotated[
        bool, typer.Option("--infra-only", help="start only Kafka and the database")
    ] = False,
) -> None:
    """Start Kafka, PostgreSQL, FerretDB and the services (a no-op for what already runs)."""
    infra = Infra()
    t0 = time.monotonic()
    try:
        started = infra.up()
        deployment = infra.provision()
        if started:
            console.print(f"started {', '.join(started)} in {time.monotonic() - t0:.1f}s")
        if infra_only:
            return
        counts = parse_replicas(replicas)
        instances = []
        for spec in SERVICES:
            for replica in range(counts[spec.name]):
                start_service(infra, spec, replica, deployment=deployment)
                instances.append((spec, replica))
        wait_ready(infra, instances)
    except InfraError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if demo:
        from tiaojie.infra.demo import load_demo

        summary = load_demo(infra)
        console.print(f"demo registry: {summary}")
    console.print(f"mesh up in {time.monotonic() - t0:.1f}s")
    status()
    _print_demo_accounts()


def _print_demo_accounts() -> None:
    """The console's development accounts, one or more per role (none in production)."""
    # The console declares both as entry points: infra imports no service, and a mesh
    # installed without the console simply has no accounts to print.
    demo_accounts = _entry_point("tiaojie.demo_accounts", "console")
    settings_class = _entry_point("tiaojie.settings", "console")
    if demo_accounts is None or settings_class is None:
        return
    console_settings = settings_class()
    if console_settings.environment == "production" or not console_settings.demo_accounts:
        return
    from tiaojie.infra.demo import LINYI_COUNTIES

    table = Table(title=f"Web console http://127.0.0.1:{console_settings.port} — demo accounts")
    for column in ("username", "password", "role", "counties", "linked to"):
        table.add_column(column)
    for spec in demo_accounts(list(LINYI_COUNTIES)):
        counties = ", ".join(spec.counties) if len(spec.counties) <= 2 else f"{len(spec.counties)} counties"
        table.add_row(
            spec.username,
            console_settings.demo_password,
            str(spec.role),
            counties,
            spec.mediator_id or spec.organisation_id or "",
        )
    console.print(table)


@app.command()
def down() -> None:
    """Stop the services and the servers this project started (and nothing else)."""
    infra = Infra()
    stopped = stop_services(infra.layout)
    if not external_urls():
        stopped += infra.down()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Each process, its port and whether it answers."""
    infra = Infra()
    table = Table(title="Tiaojie mesh")
    for column in ("component", "pid", "address", "state"):
        table.add_column(column)
    kafka, mongo = infra.urls
    from tiaojie.infra.checks import kafka_answers, mongo_answers

    if external_urls():
        table.add_row("kafka (external)", "-", kafka, _state(kafka_answers(infra.admin_credentials())))
        table.add_row("database (external)", "-", mongo, _state(mongo_answers(mongo)))
    else:
        for name, address, check in (
            ("kafka", kafka, lambda: kafka_answers(infra.admin_credentials())),
            ("postgres", f"127.0.0.1:{infra.postgres.port}", lambda: True),
            ("ferretdb", mongo, lambda: mongo_answers(mongo)),
        ):
            proc = procs.running(infra.layout.run, name)
            table.add_row(name, str(proc.pid) if proc else "-", address, _state(bool(proc) and check()))
    recorded = running_instances(infra.layout)
    for spec in SERVICES:
        replica = 0
        while instance_name(spec.name, replica) in recorded or replica == 0:
            name = instance_name(spec.name, replica)
            proc = procs.running(infra.layout.run, name)
            port = service_port(spec, replica)
            table.add_row(
                name,
                str(proc.pid) if proc else "-",
                f"http://127.0.0.1:{port}",
                _state(bool(proc) and ready(port)),
            )
            replica += 1
    console.print(table)


def _state(ok: bool) -> str:
    return "[green]healthy[/green]" if ok else "[red]down[/red]"


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="citizen, desk, mediator, center, bureau, agency, admin")],
    county: Annotated[list[str], typer.Option(help="county code (repeatable)")] = [],  # noqa: B006
    audience: Annotated[
        str | None,
        typer.Option(help=f"the service it is for ({', '.join(SERVICE_AUDIENCES)}); every one if left out"),
    ] = None,
    subject: Annotated[str, typer.Option(help="user id")] = "dev-user",
    mediator_id: Annotated[str | None, typer.Option(help="for role mediator")] = None,
    organisation_id: Annotated[str | None, typer.Option(help="for a desk, centre or mediator")] = None,
    agency_id: Annotated[str | None, typer.Option(help="for role agency")] = None,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 8 * 3600,
) -> None:
    """Print a signed token: the development key's, or TIAOJIE_JWT_SIGNING_KEY's (the issuer's)."""
    try:
        settings = RuntimeSettings(data_dir=Layout.default().data)
    except RuntimeError:  # not in a checkout: the settings' own data folder
        settings = RuntimeSettings()
    if audience is None and settings.environment == "production":
        raise typer.BadParameter(
            "production tokens name their service: give --audience", param_hint="--audience"
        )
    try:
        signer = signer_for(settings)
        typer.echo(
            issue_token(
                signer,
                subject=subject,
                role=role,
                counties=county,
                audience=audience or SERVICE_AUDIENCES,
                ttl_seconds=ttl,
                mediator_id=mediator_id,
                organisation_id=organisation_id,
                agency_id=agency_id,
            )
        )
    except NoSigningKey as exc:
        raise typer.BadParameter(f"{exc} (set TIAOJIE_JWT_SIGNING_KEY)") from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--audience") from None


@app.command()
def prepare() -> None:
    """Fetch and build everything (Kafka jars, FerretDB, division data) without starting."""
    infra = Infra()
    t0 = time.monotonic()
    infra.prepare()
    console.print(f"prepared in {time.monotonic() - t0:.1f}s (cache: {infra.layout.cache})")


@app.command()
def demo(
    rate: Annotated[float, typer.Option(help="synthetic disputes per second (0: registry only)")] = 0.0,
    duration: Annotated[float, typer.Option(help="seconds to stream")] = 60.0,
    via: Annotated[str, typer.Option(help="kafka or http")] = "kafka",
) -> None:
    """Load the Linyi demo registry and optionally stream synthetic disputes."""
    from tiaojie.infra.demo import load_demo, stream_disputes

    infra = Infra()
    console.print(f"demo registry: {load_demo(infra)}")
    if rate > 0:
        sent = stream_disputes(infra, rate=rate, duration=duration, via=via)
        console.print(f"streamed {sent} disputes via {via}")


kafka_app = typer.Typer(help="The broker's principals, ACLs and certificates.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")


@kafka_app.command("client-config")
def kafka_client_config(
    principal: Annotated[
        str, typer.Option(help="admin, a service (intake, referral, ...), referral-provisioner")
    ] = "admin",
    tls: Annotated[bool, typer.Option("--tls", help="the SASL_SSL listener, verified by the CA")] = False,
) -> None:
    """Print one principal's client settings as one JSON line (for kcat, aiokafka, scripts)."""
    infra = Infra()
    if tls and not infra.private:
        raise typer.BadParameter("--tls describes the local broker's listener; this broker is external")
    try:
        credentials = infra.local_credentials(principal, tls=tls)
    except InfraError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(credentials.to_json())


@kafka_app.command("certs")
def kafka_certs(
    out: Annotated[str, typer.Option(help="folder for ca.pem, ca-key.pem and broker.pem")],
    host: Annotated[list[str], typer.Option(help="a name or address clients use for the broker")] = [],  # noqa: B006
    owner: Annotated[int | None, typer.Option(help="uid the broker runs as (gets broker.pem)")] = None,
) -> None:
    """Create a CA (once) and a broker certificate signed by it, for SASL_SSL."""
    from pathlib import Path

    from tiaojie.infra.certs import write_certificates

    certs = write_certificates(Path(out), host or ["localhost", "127.0.0.1"], owner=owner)
    console.print(f"CA: {certs.ca}\nbroker key store (PEM): {certs.broker}")


@kafka_app.command("acls")
def kafka_acls(
    principal: Annotated[str | None, typer.Option(help="only this SCRAM user")] = None,
) -> None:
    """The ACLs the broker holds, as the admin sees them."""
    import asyncio

    from tiaojie.runtime.access import BrokerAdmin

    infra = Infra()
    grants = asyncio.run(BrokerAdmin(infra.admin_credentials()).grants(principal=principal))
    table = Table(title="Kafka ACLs (ALLOW)")
    for column in ("principal", "operation", "resource", "name", "pattern"):
        table.add_column(column)
    for g in grants:
        table.add_row(
            g.principal, g.operation.upper(), g.resource, g.name, "prefix" if g.prefixed else "literal"
        )
    console.print(table)


@kafka_app.command("provision")
def kafka_provision(
    passwords_dir: Annotated[
        str | None,
        typer.Option(help="a folder of kafka_password_<service> files (a compose deployment's secrets)"),
    ] = None,
) -> None:
    """Topics, one principal per service and exactly the ACLs of the topic contract, as the
    broker administrator of TIAOJIE_KAFKA_* (or of the local broker)."""
    import asyncio
    from pathlib import Path

    from tiaojie.runtime.access import (
        PROVISIONER,
        SERVICES,
        BrokerAdmin,
        PasswordBook,
        provision,
        provisioner_principal,
        service_principal,
    )

    infra = Infra()
    if passwords_dir is None:
        deployment = infra.provision()
    else:
        settings = RuntimeSettings()
        folder = Path(passwords_dir)
        known = {
            service_principal(settings, s): (folder / f"kafka_password_{s}").read_text().strip()
            for s in SERVICES
        }
        known[provisioner_principal(settings)] = (
            (folder / f"kafka_password_{PROVISIONER}").read_text().strip()
        )
        admin = settings.kafka_credentials()
        deployment = asyncio.run(provision(BrokerAdmin(admin), settings, PasswordBook(known)))
    names = ", ".join(c.username or "" for c in deployment.services.values())
    console.print(f"provisioned: {names}, {deployment.provisioner.username}")


@app.command(
    "kcat",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def kcat(ctx: typer.Context) -> None:
    """Debian's kcat on a librdkafka that can log in to Kafka 4 (see tiaojie.infra.kcat)."""
    import os

    from tiaojie.infra.kcat import KcatMissing, kcat_command

    try:
        binary, env = kcat_command()
    except KcatMissing as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    os.execve(binary, [binary, *ctx.args], env)  # noqa: S606 - kcat itself, with the arguments given


deploy_app = typer.Typer(help="A docker-compose deployment's secrets.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("secrets")
def deploy_secrets(
    out: Annotated[str, typer.Option(help="the folder docker-compose.yml reads secrets from")] = "secrets",
    kafka_host: Annotated[str, typer.Option(help="the broker's name in the broker certificate")] = "kafka",
) -> None:
    """Generate the deployment's keys, passwords, database URLs and broker certificate
    (missing ones only; never committed: the folder is git-ignored)."""
    from pathlib import Path

    from tiaojie.infra.deploy import write_deployment_secrets

    written = write_deployment_secrets(Path(out), kafka_host=kafka_host)
    console.print(f"{out}: {', '.join(written) or 'complete, nothing to add'}")


@deploy_app.command("rotate-token-key")
def deploy_rotate_token_key(
    step: Annotated[
        str, typer.Argument(help="add (a new key to jwt_jwks), switch (the console to it), retire")
    ],
    out: Annotated[str, typer.Option(help="the folder docker-compose.yml reads secrets from")] = "secrets",
) -> None:
    """One step of replacing the token issuer's key (README: "Running in production")."""
    from pathlib import Path

    from tiaojie.infra.deploy import rotate_token_key

    if step not in ("add", "switch", "retire"):
        raise typer.BadParameter("add, switch or retire", param_hint="STEP")
    try:
        console.print(rotate_token_key(Path(out), step))  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="STEP") from None


def _entry_point(group: str, name: str) -> Any:
    """The object an installed service declares under `name` in an entry-point group, or None."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=group, name=name):
        return entry.load()
    return None


def _service_of(module: str) -> str:
    """The service whose package holds `module` (its broker principal runs the command)."""
    for spec in SERVICES:
        if module == spec.module or module.startswith(spec.module + "."):
            return spec.name
    raise LookupError(f"{module} belongs to no service of the mesh")


def _mount_service_commands() -> None:
    """Commands services contribute through entry points (e.g. stats: `tiaojie hotspots
    detect`, `tiaojie rebuild`), so that infra imports no service module."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="tiaojie.cli.groups"):
        app.add_typer(entry.load(), name=entry.name)
    for entry in entry_points(group="tiaojie.cli.commands"):
        app.command(entry.name)(as_local_principal(_service_of(entry.module), entry.load()))


def as_local_principal(service: str, command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a service's command as that service's broker principal: the one of the local
    mesh (from .data) unless TIAOJIE_KAFKA_USERNAME names another."""
    import functools
    import os

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not os.environ.get("TIAOJIE_KAFKA_USERNAME"):
            try:
                os.environ.update(Infra().local_credentials(service).environment())
            except InfraError as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(1) from None
        return command(*args, **kwargs)

    return run


_mount_service_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
