"""``simpul``: the developer's command line.

* ``simpul run``: the embedded default (PostgreSQL, Tansu, migrations, reference and demo data,
  the four services) on one machine, no Docker; Ctrl-C stops it all, data stays in ``.simpul/``.
  It says what it is doing, one line a step: on a terminal a spinner with the time so far, in a
  log or CI plain lines without control codes.
* ``simpul token``: mint a development bearer token with the key ``simpul run`` generated.

Services are started as their own processes (``python -m registry serve``), so this module never
imports a service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shared.auth import DEVELOPMENT_SCOPES, generate_keypair, mint_token
from shared.embedded import EmbeddedPostgres, EmbeddedTansu, port_open, wait_for_port

__all__ = ["SERVICES", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Simpul developer commands")

# name -> HTTP port of the embedded default
SERVICES: dict[str, int] = {
    "registry": 8001,
    "programs": 8002,
    "referrals": 8003,
    "complaints": 8004,
}

# What a service's first migration does beyond creating its tables (it takes seconds).
FIRST_MIGRATION = {"registry": "loading the 91,599 Kemendagri region codes"}
# The services whose `seed` loads anything: the others' is a no-op that costs a process start.
SEEDED = ("registry",)


def _home() -> Path:
    return Path(os.environ.get("SIMPUL_HOME", Path.cwd() / ".simpul")).resolve()


def _keys(home: Path) -> tuple[str, str]:
    keys = home / "keys"
    private, public = keys / "jwt-ed25519.pem", keys / "jwt-ed25519.pub.pem"
    if not private.exists():
        keys.mkdir(parents=True, exist_ok=True)
        private_pem, public_pem = generate_keypair()
        private.write_text(private_pem)
        private.chmod(0o600)
        public.write_text(public_pem)
    return private.read_text(), public.read_text()


def service_environment(
    name: str,
    *,
    database_url: str,
    bootstrap: str,
    public_key: str,
    environment: str = "development",
) -> dict[str, str]:
    prefix = name.upper() + "_"
    return {
        prefix + "DATABASE_URL": database_url,
        prefix + "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        prefix + "JWT_PUBLIC_KEY": public_key,
        prefix + "ENVIRONMENT": environment,
    }


class Steps:
    """What ``simpul run`` is doing, one line a step (``what`` in a column, then ``doing``).

    On a terminal a step shows a spinner and the time so far, then a tick and how long it took;
    elsewhere (a log, CI) it prints ``what doing ...`` when it starts and ``done (1.2 s)`` when it
    ends, no control codes. What a step's command printed is shown under its line afterwards.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def step(self, what: str, doing: str) -> Iterator[None]:
        started = time.monotonic()
        label = f"{what:<12} {escape(doing)}"
        if not self.console.is_terminal:
            self.console.print(f"{label} ...", end="")
            try:
                yield
            except BaseException:
                self.console.print(" failed")
                raise
            self.console.print(f" done ({time.monotonic() - started:.1f} s)")
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        try:
            with Progress(*columns, console=self.console, transient=True) as progress:
                progress.add_task(label, total=None)
                yield
        except BaseException:
            self.console.print(f"[red]✗[/] {label}")
            raise
        self.console.print(f"[green]✓[/] {label} ({time.monotonic() - started:.1f} s)")

    def command(self, what: str, doing: str, args: list[str], env: dict[str, str]) -> None:
        """Run ``args`` as one step; its output is shown after it, or with the failure."""
        result = None
        try:
            with self.step(what, doing):
                result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise typer.Exit(1)
        finally:
            output = (result.stdout + result.stderr).strip() if result else ""
            for text in output.splitlines():
                self.console.print(" " * 13 + escape(text))
            if result is not None and result.returncode != 0:
                command = " ".join(["python", *args[1:]])
                self.console.print(f"{escape(command)} exited with {result.returncode}")


@app.command()
def run(
    postgres_port: Annotated[int, typer.Option(help="Port of the embedded PostgreSQL")] = 55432,
    broker_port: Annotated[int, typer.Option(help="Port of the embedded Tansu broker")] = 19092,
    demo: Annotated[
        bool,
        typer.Option(
            envvar="SIMPUL_DEMO",
            help="Load the demo data set (households of Kota Bengkulu; a no-op once loaded)",
        ),
    ] = True,
) -> None:
    """Run Simpul on this machine: embedded PostgreSQL and broker, migrations, data, 4 services."""
    # `kill`, `timeout` or a service manager send SIGTERM: stop the children as Ctrl-C does,
    # instead of dying and leaving PostgreSQL, the broker and the services orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    home = _home()
    home.mkdir(parents=True, exist_ok=True)
    private_key, public_key = _keys(home)
    external_db = os.environ.get("DATABASE_URL")
    external_broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")

    postgres = None if external_db else EmbeddedPostgres(home / "pgdata", port=postgres_port)
    broker = None if external_broker else EmbeddedTansu(broker_port, log_path=home / "tansu.log")
    children: list[subprocess.Popen[bytes]] = []
    steps = Steps()
    try:
        if postgres is not None:
            with steps.step("PostgreSQL", f"starting (data in {postgres.data_dir})"):
                postgres.start()
        if broker is not None:
            if port_open(broker_port):
                raise typer.BadParameter(f"port {broker_port} is taken; is Simpul already running?")
            with steps.step("Broker", f"starting (Tansu, in memory, {broker.bootstrap_servers})"):
                broker.start()
        bootstrap = external_broker or broker.bootstrap_servers  # type: ignore[union-attr]
        for name, port in SERVICES.items():
            database = f"simpul_{name}"
            fresh: bool | None = None  # unknown on an external server
            if postgres is not None:
                fresh = postgres.create_database(database)
                url = postgres.url(database)
            else:
                url = _database_url(external_db or "", database)
            env = {
                **os.environ,
                **service_environment(
                    name, database_url=url, bootstrap=bootstrap, public_key=public_key
                ),
            }
            doing = "migrating"
            if name in FIRST_MIGRATION and fresh is not False:
                doing += f" (new database: creating the tables, {FIRST_MIGRATION[name]})"
            steps.command(name, doing, [sys.executable, "-m", name, "migrate"], env)
            if demo and name in SEEDED:
                doing = "loading the demo data (--no-demo skips it)"
                steps.command(name, doing, [sys.executable, "-m", name, "seed"], env)
            log = open(home / f"{name}.log", "ab")
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", name, "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        with steps.step("Services", f"starting {', '.join(SERVICES)} (logs in {home})"):
            for port, child in zip(SERVICES.values(), children, strict=True):
                wait_for_port(port, timeout=60, process=child)
        token = mint_token(
            private_key,
            subject="dev-operator",
            agency="KEMENSOS",
            scopes=DEVELOPMENT_SCOPES,
            ttl_seconds=12 * 3600,
        )
        _print_banner(postgres, bootstrap, home, token)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [
            name for name, child in zip(SERVICES, children, strict=True) if child.poll() is not None
        ]
        typer.echo(f"stopped: {', '.join(failed)} exited; see {home}/<service>.log", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("\nStopping Simpul ...")
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        typer.echo("Stopped. Data kept in " + str(home))


def _interrupt(signum: int, frame: object) -> None:
    # Once is enough: a second SIGTERM (uv run forwards the one it gets) would cut the cleanup.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _database_url(server_url: str, database: str) -> str:
    base = server_url.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + database


def _print_banner(
    postgres: EmbeddedPostgres | None, bootstrap: str, home: Path, token: str
) -> None:
    lines = ["", "Simpul is running.", ""]
    for name, port in SERVICES.items():
        lines.append(
            f"  {name:<11} http://127.0.0.1:{port}   OpenAPI: http://127.0.0.1:{port}/docs"
        )
    lines += [
        "",
        f"  PostgreSQL  {postgres.admin_url if postgres else 'external (DATABASE_URL)'}",
        f"  Kafka       {bootstrap}",
        f"  Logs        {home}/<service>.log",
        "",
        "A development token (12 h, national scope, every scope):",
        "",
        f"  export TOKEN={token}",
        "",
        "Try it:",
        '  curl -s -X POST http://127.0.0.1:8001/v1/persons -H "Authorization: Bearer $TOKEN" \\',
        '       -H "Content-Type: application/json" \\',
        '       -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" \\',
        '       -d \'{"nik": "1771014509900001", "full_name": "Siti Aminah", '
        '"birth_date": "1990-09-05", "sex": "F", "village_code": "1771011001"}\'',
        '  curl -s "http://127.0.0.1:8002/v1/person-facts'
        '?region=1771011001&purpose=programme+monitoring" \\',
        '       -H "Authorization: Bearer $TOKEN"',
        "",
        "Ctrl-C stops everything; the data stays in " + str(home),
    ]
    typer.echo("\n".join(lines), color=False)


@app.command()
def token(
    agency: Annotated[
        str, typer.Option(help="Agency claim, e.g. KEMENSOS, BPJS, DINSOS-1771")
    ] = "KEMENSOS",
    scope: Annotated[list[str] | None, typer.Option(help="Scope; repeat for several")] = None,
    region: Annotated[
        list[str] | None, typer.Option(help="Region code prefix; repeat; none = national")
    ] = None,
    subject: Annotated[str, typer.Option(help="Who the token is for")] = "dev-operator",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
) -> None:
    """Mint a development token signed with the key in .simpul/keys."""
    private_key, _ = _keys(_home())
    typer.echo(
        mint_token(
            private_key,
            subject=subject,
            agency=agency,
            scopes=scope or DEVELOPMENT_SCOPES,
            regions=region or [],
            ttl_seconds=ttl,
        )
    )


def main() -> None:
    app()
