"""``python -m registry serve|api|worker|migrate|seed|import``."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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
from registry.demo import seed
from registry.reconciliation import ImportSummary, import_file, write_error_report
from registry.settings import RegistrySettings
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


if __name__ == "__main__":
    cli()
