"""``python -m programs serve|api|worker|migrate|seed|rebuild-facts``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from programs.app import create_app
from programs.facts.rebuild import rebuild_facts
from programs.settings import ProgramsSettings
from shared.entrypoint import service_cli
from shared.observability import configure_logging

cli = service_cli(
    name="programs",
    settings_factory=ProgramsSettings,
    create_app=create_app,
    service_root=Path(__file__).resolve().parents[2],
)


@cli.command("rebuild-facts")
def rebuild_facts_command() -> None:
    """Rebuild the registry read model (person and household facts) from the registry's topics.

    Empties the facts, replays registry.person.v1 and registry.household.v1 from the earliest
    offset with a consumer group of its own, and stops at the end offsets it found. Safe while
    the service runs, but until it ends the model is incomplete: see programs.facts.rebuild.
    """
    settings = ProgramsSettings()
    configure_logging(settings.log_level)
    report = asyncio.run(rebuild_facts(settings))
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.outcomes.items()))
    typer.echo(
        f"replayed {report.records} registry events ({outcomes or 'none'}) as {report.group}"
    )


if __name__ == "__main__":
    cli()
