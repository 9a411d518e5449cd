"""``python -m registry serve|api|worker|migrate|seed|import|dci-sender``."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from registry.app import create_app
from registry.dci import senders as dci_senders
from registry.demo.seed import seed
from registry.reconciliation.pipeline import ImportSummary, import_file
from registry.reconciliation.service import write_error_report
from registry.settings import RegistrySettings
from shared.db import create_engine, create_sessionmaker, session_scope
from shared.entrypoint import service_cli

cli = service_cli(
    name="registry",
    settings_factory=RegistrySettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
    seed=seed,  # type: ignore[arg-type]
)


class ImportMode(StrEnum):
    delta = "delta"
    snapshot = "snapshot"


@cli.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="DTSEN CSV file")
    ],
    mode: Annotated[
        ImportMode,
        typer.Option(help="delta: upsert the rows; snapshot: also move out missing members"),
    ] = ImportMode.delta,
    batch_size: Annotated[
        int, typer.Option(min=100, help="Rows per transaction (households are never split)")
    ] = 20_000,
    agency: Annotated[str, typer.Option(help="Recorded as the import's creator")] = "BPS",
    report: Annotated[
        Path | None,
        typer.Option(help="Where to write the error report (default: FILE.errors.csv)"),
    ] = None,
) -> None:
    """Reconcile the registry with a BPS DTSEN snapshot or delta file (see RECONCILIATION.md)."""
    settings = RegistrySettings()
    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = "validating (bytes)" if phase == "validating" else "applying (rows)"
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = asyncio.run(
            import_file(
                settings.database_url,
                file,
                mode=mode.value,
                agency=agency,
                batch_size=batch_size,
                progress=progress,
            )
        )
    _print_summary(console, summary)
    errors = summary.invalid_rows + summary.batches_failed + (summary.status == "failed")
    if errors:
        target = report or file.with_name(file.name + ".errors.csv")
        written = asyncio.run(write_error_report(settings.database_url, summary.id, target))
        console.print(f"{written} errors: [bold]{target}[/] (also GET {_errors_url(summary)})")
    else:
        console.print("no errors")
    if summary.status != "completed":
        raise typer.Exit(code=1)


def _errors_url(summary: ImportSummary) -> str:
    return f"/v1/imports/{summary.id}/errors.csv"


def _print_summary(console: Console, summary: ImportSummary) -> None:
    table = Table(title=f"{summary.mode} import: {summary.status}", caption=f"id {summary.id}")
    table.add_column("rows", justify="left")
    table.add_column("", justify="right")
    for label, value in (
        ("in the file", summary.total_rows),
        ("valid", summary.valid_rows),
        ("invalid or skipped", summary.invalid_rows),
        ("changed", summary.changed_rows),
        ("unchanged", summary.unchanged_rows),
        ("moved out (snapshot)", summary.moved_out),
        ("batches failed", f"{summary.batches_failed} of {summary.batches_total}"),
        ("events", summary.events_emitted),
    ):
        table.add_row(label, str(value))
    for event_type, count in sorted(summary.event_counts.items()):
        table.add_row(f"  {event_type}", str(count))
    console.print(table)
    if summary.failure:
        console.print(f"[red]failed:[/] {summary.failure}")


dci_sender_cli = typer.Typer(help="SPDCI senders: partner systems allowed to call /spdci/v1.0.0.")
cli.add_typer(dci_sender_cli, name="dci-sender")


async def _with_session(action: Any) -> Any:
    engine = create_engine(RegistrySettings().database_url, pool_size=1)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await action(session)
    finally:
        await engine.dispose()


def _read_key(value: str) -> str:
    path = Path(value)
    return path.read_text() if path.is_file() else value


@dci_sender_cli.command("add")
def dci_sender_add(
    sender_id: Annotated[str, typer.Argument(help="The sender_id its messages carry")],
    agency: Annotated[str, typer.Option(help="Agency of its bearer tokens (BPJS, BGN...)")],
    public_key: Annotated[
        str, typer.Option(help="Ed25519 public key: PEM file, PEM text or base64 of 32 bytes")
    ],
    key_id: Annotated[str, typer.Option(help="The key id its signatures name")] = "k1",
    callback: Annotated[
        list[str] | None,
        typer.Option(help="Callback URL prefix it may receive at (repeat for several)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Human name of the system")] = None,
    max_messages_per_minute: Annotated[
        int | None,
        typer.Option(help="Rate limit: messages a minute (over: 429); unset: no limit"),
    ] = None,
) -> None:
    """Register a sender (the same as POST /v1/dci/senders with scope registry:admin)."""
    try:
        sender_in = dci_senders.SenderCreate(
            sender_id=sender_id,
            agency=agency,
            name=name,
            public_keys={key_id: _read_key(public_key)},
            callback_allow_list=callback or [],
            max_messages_per_minute=max_messages_per_minute,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def create(session: Any) -> dci_senders.SenderRead:
        sender = await dci_senders.create_sender(session, sender_in)
        return dci_senders.SenderRead.model_validate(sender)

    try:
        created = asyncio.run(_with_session(create))
    except dci_senders.SenderExists as exc:
        Console(stderr=True).print(f"[red]{exc.detail}[/]")
        raise typer.Exit(code=1) from exc
    Console().print(f"registered SPDCI sender [bold]{created.sender_id}[/] ({created.agency})")


@dci_sender_cli.command("list")
def dci_sender_list() -> None:
    """Every registered sender with its keys and callback prefixes."""

    async def read(session: Any) -> list[dci_senders.SenderRead]:
        return [
            dci_senders.SenderRead.model_validate(row)
            for row in await dci_senders.list_senders(session)
        ]

    table = Table(title="SPDCI senders")
    table.add_column("sender_id", no_wrap=True)  # copied into messages: never cut
    for column in ("agency", "keys", "callback prefixes", "active", "max/min"):
        table.add_column(column)
    for sender in asyncio.run(_with_session(read)):
        table.add_row(
            sender.sender_id,
            sender.agency,
            ", ".join(sender.public_keys),
            "\n".join(sender.callback_allow_list),
            "yes" if sender.active else "no",
            str(sender.max_messages_per_minute or "no limit"),
        )
    Console().print(table)


if __name__ == "__main__":
    cli()
