"""Demo data for the embedded runner: synthetic households of Kota Bengkulu (1771).

``python -m registry seed`` generates :data:`DEMO_HOUSEHOLDS` households with
:mod:`registry.demo.generator` (fixed seed, so always the same NIKs and KKs) and applies them
through the BPS reconciliation pipeline as a *delta* file, the path real data takes: rows are
validated, written set-based, versioned, and every new household and person gets its
``registered`` event in the outbox. Running it again changes nothing and emits nothing, since
the reconciliation writes only what differs.

Each run is one new trace: its events carry a ``traceparent`` of that trace, as the events of a
request do, so the consumers' log lines of the demo data lead back to the seed.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import typer

from registry.demo.generator import generate_households, write_csv
from registry.reconciliation.pipeline import ImportSummary, import_file
from registry.settings import RegistrySettings
from shared.observability import trace_context

__all__ = ["DEMO_HOUSEHOLDS", "DEMO_REGION", "DEMO_SEED", "seed"]

log = logging.getLogger("registry.demo")

DEMO_REGION = "1771"  # Kota Bengkulu
DEMO_HOUSEHOLDS = 150
DEMO_SEED = 1771


async def seed(settings: RegistrySettings) -> ImportSummary:
    """Load the demo households (a new trace), say on stdout what it did, return the summary."""
    with trace_context(None):  # no traceparent given: a new trace for this run
        return await _seed(settings)


async def _seed(settings: RegistrySettings) -> ImportSummary:
    with tempfile.TemporaryDirectory(prefix="simpul-demo-") as folder:
        path = Path(folder) / f"demo_{DEMO_REGION}_seed{DEMO_SEED}.csv"
        rows = write_csv(path, generate_households(DEMO_REGION, DEMO_HOUSEHOLDS, seed=DEMO_SEED))
        summary = await import_file(settings.database_url, path, mode="delta", agency="KEMENSOS")
    log.info(
        "registry.demo.seeded",
        extra={
            "rows": rows,
            "changed": summary.changed_rows,
            "invalid": summary.invalid_rows,
            "events": summary.events_emitted,
            "status": summary.status,
        },
    )
    if summary.status != "completed" or summary.invalid_rows or summary.batches_failed:
        raise RuntimeError(f"the demo import did not apply cleanly: {summary}")
    what = f"{DEMO_HOUSEHOLDS} households ({rows} people) of Kota Bengkulu ({DEMO_REGION})"
    if summary.changed_rows:
        typer.echo(f"{what}: loaded, {summary.events_emitted} events in the outbox")
    else:
        typer.echo(f"{what}: already loaded, nothing to do")
    return summary
