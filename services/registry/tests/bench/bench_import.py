"""Reconciliation import benchmark: the import beside a raw COPY of the same file, same run.

    uv run python services/registry/tests/bench/bench_import.py --people 200000

What it does, all on this machine:

1. Starts its own embedded PostgreSQL (durable: fsync and synchronous commit on, as in
   production), creates and migrates a registry database.
2. Writes a DTSEN CSV of at least ``--people`` synthetic people of region ``--region``
   (:mod:`registry.demo.generator`), and a "next month" copy of it in which ``--change-share``
   of the households changed: a decile moved up or down, a member died, a child moved to
   another card.
3. Baseline: ``COPY ... FROM STDIN (FORMAT csv)`` of the file into a plain table of text
   columns (best of three).
4. The import (``registry.reconciliation.import_file``, the CLI's function, end to end: hashing,
   validation, staging, checks, merge, outbox) in three situations:
   * first load of the file into the empty registry (every row new: rows, history, events),
     then ``VACUUM ANALYZE`` as autovacuum would do on a live registry;
   * the same file again (nothing changes, nothing is emitted);
   * the next-month file as a snapshot (a few percent of the households change).
5. Prints rows/s of each beside the baseline, the ratio (the goal is 1/3 or better), how the
   time splits between preparing (staging, validation, cross-row checks, comparison) and
   applying (the batches), the machine's core count and load; then stops PostgreSQL and removes
   its data (``--keep`` keeps it). ``--rounds N`` repeats 3-4 on a fresh database N times and
   ends with the range of each figure: other work on the machine moves single runs a lot, the
   ratio to the COPY of the same round much less.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg

import registry
from registry.demo.generator import generate_households, write_csv
from registry.reconciliation.pipeline import ImportSummary, import_file
from registry.reconciliation.staging import COLUMNS
from shared.embedded import EmbeddedPostgres, free_port
from shared.migrations import upgrade
from shared.testing.plugin import service_root

PEOPLE_PER_HOUSEHOLD = 3.5  # a little under the generator's mean: enough households


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)  # noqa: T201


@dataclass
class Figure:
    name: str
    rows: int
    seconds: float
    note: str = ""
    applying: float | None = None  # seconds spent applying batches (the rest: preparing)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def next_month(source: Path, target: Path, *, share: float, seed: int) -> dict[str, int]:
    """Copy ``source`` with ``share`` of its households changed; returns what was changed."""
    rng = random.Random(seed)
    with open(source, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        cards: dict[str, list[list[str]]] = {}
        for row in reader:
            cards.setdefault(row[0], []).append(row)
    col = {name: i for i, name in enumerate(COLUMNS)}
    kks = list(cards)
    changed = {"decile": 0, "death": 0, "move": 0}
    for kk in rng.sample(kks, int(len(kks) * share)):
        members = cards[kk]
        kind = rng.choice(("decile", "decile", "death", "move"))
        if kind == "decile" and members[0][col["decile"]]:
            decile = int(members[0][col["decile"]])
            up = decile == 1 or (decile < 10 and rng.random() < 0.7)
            new = str(decile + 1 if up else decile - 1)
            for row in members:
                row[col["decile"]] = new
            changed["decile"] += 1
        elif kind == "death":
            living = [r for r in members if r[col["status"]] == "alive"]
            if living:
                row = rng.choice(living)
                born = date.fromisoformat(row[col["birth_date"]])
                row[col["status"]] = "deceased"
                row[col["death_date"]] = max(born, date(2025, 10, 1)).isoformat()
                changed["death"] += 1
        elif kind == "move":
            children = [r for r in members if r[col["relationship"]] == "child"]
            destination = cards[rng.choice(kks)]
            if children and destination is not members:
                child = children[0]
                members.remove(child)
                moved = destination[0][: col["nik"]] + child[col["nik"] :]
                moved[col["relationship"]] = "other"
                destination.append(moved)
                changed["move"] += 1
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for members in cards.values():
            writer.writerows(members)
    return changed


async def raw_copy(dsn: str, path: Path, rows: int) -> Figure:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE bench_raw_copy (" + ", ".join(f"{c} text" for c in COLUMNS) + ")"
        )
        best = math.inf
        for _ in range(3):
            await conn.execute("TRUNCATE bench_raw_copy")
            started = time.perf_counter()
            await conn.copy_to_table("bench_raw_copy", source=path, format="csv", header=True)
            best = min(best, time.perf_counter() - started)
        await conn.execute("DROP TABLE bench_raw_copy")
    finally:
        await conn.close()
    return Figure("raw COPY of the file (baseline, best of 3)", rows, best)


async def timed_import(url: str, path: Path, *, name: str, mode: str, batch: int) -> Figure:
    applying_from: list[float] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "applying" and not applying_from:
            applying_from.append(time.perf_counter())

    started = time.perf_counter()
    summary: ImportSummary = await import_file(
        url,
        path,
        mode=mode,  # type: ignore[arg-type]
        agency="BENCH",
        batch_size=batch,
        progress=progress,
    )
    ended = time.perf_counter()
    seconds = ended - started
    if summary.status != "completed" or summary.batches_failed or summary.invalid_rows:
        raise SystemExit(f"{name}: import did not go cleanly: {summary}")
    note = f"changed {summary.changed_rows:,}, events {summary.events_emitted:,}" + (
        f", moved out {summary.moved_out:,}" if summary.moved_out else ""
    )
    applying = ended - applying_from[0] if applying_from else 0.0
    return Figure(name, summary.total_rows, seconds, note, applying)


GOAL = 1 / 3  # of the raw COPY rate


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"cores: {os.cpu_count()} (usable by this process: {usable})   load average: {load}"


def print_round(number: int, figures: list[Figure], baseline: Figure, server: str) -> None:
    lines = [
        "",
        f"round {number}   {machine()}",
        f"server: {server}",
        f"{'':<46} {'rows':>9} {'seconds':>8} {'prepare':>8} {'apply':>7} {'rows/s':>9} "
        f"{'vs COPY':>8} {'goal':>5}",
        f"{baseline.name:<46} {baseline.rows:>9,} {baseline.seconds:>8.2f} {'':>8} {'':>7} "
        f"{baseline.rate:>9,.0f} {'1/1.0':>8}",
    ]
    for f in figures:
        ratio = f.rate / baseline.rate
        applying = f.applying or 0.0
        lines.append(
            f"{f.name:<46} {f.rows:>9,} {f.seconds:>8.2f} {f.seconds - applying:>8.2f} "
            f"{applying:>7.2f} {f.rate:>9,.0f} {'1/' + format(1 / ratio, '.1f'):>8} "
            f"{'met' if ratio >= GOAL else 'no':>5}  {f.note}"
        )
    lines.append(
        "prepare = staging, validation, cross-row checks and the comparison with the registry; "
        "apply = the batches (writes, history, outbox)"
    )
    print("\n".join(lines), flush=True)  # noqa: T201


def print_summary(rounds: list[tuple[Figure, list[Figure]]]) -> None:
    """Range of each figure over the rounds, the ratio taken within each round."""
    lines = ["", f"over {len(rounds)} rounds   {machine()}"]
    lines.append(f"{'':<46} {'rows/s (min-max)':>20} {'vs COPY of the same round':>28}")
    baselines = [b for b, _ in rounds]
    rates = [b.rate for b in baselines]
    lines.append(f"{baselines[0].name:<46} {min(rates):>9,.0f}-{max(rates):<10,.0f}")
    for i, first in enumerate(rounds[0][1]):
        rates = [figures[i].rate for _, figures in rounds]
        ratios = [figures[i].rate / base.rate for base, figures in rounds]
        span = f"1/{1 / max(ratios):.1f} to 1/{1 / min(ratios):.1f}"
        lines.append(f"{first.name:<46} {min(rates):>9,.0f}-{max(rates):<10,.0f} {span:>28}")
    lines.append(f"goal: the import at 1/{1 / GOAL:.0f} of the raw COPY rate or better")
    print("\n".join(lines), flush=True)  # noqa: T201


async def measure_round(
    postgres: EmbeddedPostgres, args: argparse.Namespace, files: tuple[Path, Path], number: int
) -> tuple[Figure, list[Figure]]:
    database = f"registry_import_bench_{number}"
    postgres.create_database(database)
    url = postgres.url(database)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    await asyncio.to_thread(upgrade, service_root(registry.__file__), url)
    first, second = files
    rows = sum(1 for _ in first.open("rb")) - 1

    log(f"round {number}: baseline, raw COPY")
    baseline = await raw_copy(dsn, first, rows)
    figures = []
    for name, path, mode in (
        ("import, first load (all rows new)", first, "delta"),
        ("import, same file again (no change)", first, "delta"),
        (f"import, next month ({args.change_share:.0%} of cards), snapshot", second, "snapshot"),
    ):
        log(name)
        figure = await timed_import(url, path, name=name, mode=mode, batch=args.batch_size)
        log(f"  {figure.rate:,.0f} rows/s ({figure.note})")
        figures.append(figure)
        if len(figures) == 1:  # a live registry has statistics; autovacuum would catch up
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(
                    "VACUUM ANALYZE household, person, household_version, person_version, "
                    "outbox_event"
                )
            finally:
                await conn.close()
    conn = await asyncpg.connect(dsn)
    try:
        server = await conn.fetchval("SELECT version()")
    finally:
        await conn.close()
    print_round(number, figures, baseline, server.split(" on ")[0])
    return baseline, figures


async def run(args: argparse.Namespace, workdir: Path) -> None:
    postgres = EmbeddedPostgres(workdir / "pgdata", port=free_port(), durable=True)
    try:
        log(f"PostgreSQL (durable) on :{postgres.port}")
        postgres.start()
        households = math.ceil(args.people / PEOPLE_PER_HOUSEHOLD)
        first = workdir / "dtsen.csv"
        log(f"writing {households:,} households of region {args.region} to {first.name}")
        rows = write_csv(first, generate_households(args.region, households, seed=args.seed))
        second = workdir / "dtsen-next-month.csv"
        changes = next_month(first, second, share=args.change_share, seed=args.seed)
        log(f"  {rows:,} people, {first.stat().st_size / 1e6:.0f} MB; next month: {changes}")
        rounds = [
            await measure_round(postgres, args, (first, second), number)
            for number in range(1, args.rounds + 1)
        ]
        if len(rounds) > 1:
            print_summary(rounds)
    finally:
        postgres.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--region", default="17", help="region code prefix (17 = Bengkulu)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--change-share", type=float, default=0.05)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat on a fresh database, then print ranges"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="simpul-import-bench-"))
    try:
        asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
