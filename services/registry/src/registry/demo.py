"""Demo data for the embedded runner: synthetic households of Kota Bengkulu (1771).

``python -m registry seed`` generates :data:`DEMO_HOUSEHOLDS` households with
:mod:`registry.generator` (fixed seed, so always the same NIKs and KKs) and applies them
through the BPS reconciliation pipeline as a *delta* file, the path real data takes: rows are
validated, written set-based, versioned, and every new household and person gets its
``registered`` event in the outbox. Running it again changes nothing and emits nothing, since
the reconciliation writes only what differs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from registry.generator import generate_households, write_csv
from registry.reconciliation import ImportSummary, import_file
from registry.settings import RegistrySettings

__all__ = ["DEMO_HOUSEHOLDS", "DEMO_REGION", "DEMO_SEED", "seed"]

log = logging.getLogger("registry.demo")

DEMO_REGION = "1771"  # Kota Bengkulu
DEMO_HOUSEHOLDS = 150
DEMO_SEED = 1771


async def seed(settings: RegistrySettings) -> ImportSummary:
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
    return summary
