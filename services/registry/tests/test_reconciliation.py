"""BPS reconciliation imports: validation report, one event per real change, idempotence,
snapshot semantics and whole-batch rollback; through HTTP and through the CLI's function."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.app import create_app
from registry.events import PUBLISHED
from registry.nik import kk_problems, nik_problems
from registry.reconciliation.pipeline import ImportSummary, import_file
from registry.reconciliation.staging import COLUMNS
from registry.reconciliation.validation import (
    iso_date_sql,
    kk_issue_dates,
    kk_valid_sql,
    nik_valid_sql,
)
from registry.settings import RegistrySettings
from shared.envelope import CloudEvent
from shared.testing import (
    RunningService,
    eventually,
    fetch,
    running_service,
    sequence_number,
)

from .factories import (
    DISTRICT,
    OTHER_REGENCY_VILLAGE,
    VILLAGE,
    make_nik,
    some_date,
    unique_serial,
)

Headers = Callable[..., dict[str, str]]
IMPORT = ["registry:import"]
_issued: set[str] = set()


# ---------------------------------------------------------------------------- file builders


def _unique(make: Callable[[], str]) -> str:
    while (value := make()) in _issued:
        pass
    _issued.add(value)
    return value


def new_kk(district: str = DISTRICT) -> str:
    def make() -> str:
        issued = some_date(sequence_number(), first=date(2001, 1, 1), days=8000)
        return f"{district}{issued:%d%m%y}{unique_serial():04d}"

    return _unique(make)


@dataclass
class Member:
    nik: str
    full_name: str
    birth_date: date
    sex: str
    relationship: str
    status: str = "alive"
    death_date: date | None = None
    disability: str = "none"
    education: str = "sma"
    occupation: str = "Petani"


def member(relationship: str, *, sex: str | None = None, district: str = DISTRICT) -> Member:
    n = sequence_number()
    born = some_date(n, first=date(1950, 1, 1), days=23000)
    sex = sex or "MF"[n % 2]
    nik = _unique(lambda: make_nik(birth_date=born, sex=sex, district=district))
    return Member(nik, f"Warga {nik[-4:]}", born, sex, relationship)


@dataclass
class Card:
    kk: str
    members: list[Member]
    village_code: str = VILLAGE
    address: str = "Jl. Merapi No. 12, RT 003 RW 001"
    decile: int | None = 3
    floor: str = "cement"
    wall: str = "brick"
    roof: str = "zinc"
    water: str = "protected_well"
    sanitation: str = "private"
    electricity: str = "pln_900"
    house_fit: bool = True
    extra: list[list[str]] = field(default_factory=list)


def family(size: int = 3, *, village: str = VILLAGE) -> Card:
    roles = ["head", "spouse", "child", "child", "parent", "other"][:size]
    return Card(new_kk(village[:6]), [member(r, district=village[:6]) for r in roles], village)


def rows(cards: Iterable[Card]) -> list[list[str]]:
    out: list[list[str]] = []
    for c in cards:
        house = [c.kk, c.village_code, c.address, "" if c.decile is None else str(c.decile)]
        house += [c.floor, c.wall, c.roof, c.water, c.sanitation, c.electricity]
        house += ["true" if c.house_fit else "false"]
        for m in c.members:
            out.append(
                [
                    *house,
                    m.nik,
                    m.full_name,
                    m.birth_date.isoformat(),
                    m.sex,
                    m.relationship,
                    m.status,
                    m.death_date.isoformat() if m.death_date else "",
                    m.disability,
                    m.education,
                    m.occupation,
                ]
            )
        out.extend(c.extra)
    return out


def csv_bytes(data: Iterable[list[str]], *, header: Iterable[str] = COLUMNS) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(data)
    return buffer.getvalue().encode()


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"dtsen-{uuid.uuid4().hex[:8]}.csv"
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- database probes


async def ids_of(settings: RegistrySettings, cards: Iterable[Card]) -> dict[str, str]:
    """KK/NIK -> registry id of every household and person of ``cards`` that exists."""
    cards = list(cards)
    kks = [c.kk for c in cards]
    niks = [m.nik for c in cards for m in c.members]
    found = await fetch(
        settings,
        "SELECT kk AS number, id::text FROM household WHERE kk = ANY($1) "
        "UNION ALL SELECT nik, id::text FROM person WHERE nik = ANY($2)",
        kks,
        niks,
    )
    return {r["number"]: r["id"] for r in found}


async def outbox(settings: RegistrySettings, keys: Iterable[str]) -> list[dict[str, Any]]:
    """Every envelope staged under ``keys``, checked against the envelope and payload models."""
    found = await fetch(
        settings,
        "SELECT topic, key, event_type, envelope FROM outbox_event WHERE key = ANY($1) ORDER BY id",
        list(keys),
    )
    envelopes = []
    for row in found:
        envelope = json.loads(row["envelope"])
        event = CloudEvent.model_validate(envelope)
        topic, model = PUBLISHED[event.type]
        assert (row["topic"], row["event_type"], event.subject) == (topic, event.type, row["key"])
        assert event.source == "/simpul/registry"
        model.model_validate(event.data)  # extra="forbid": exactly the published fields
        assert event.data["version"] >= 1
        envelopes.append(envelope)
    return envelopes


def by_type(envelopes: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(e["type"].removeprefix("registry.") for e in envelopes)


async def run(settings: RegistrySettings, tmp_path: Path, data: bytes, **kw: Any) -> ImportSummary:
    """The CLI's path: the function behind ``python -m registry import``."""
    kw.setdefault("mode", "delta")
    return await import_file(settings.database_url, write(tmp_path, data), agency="BPS", **kw)


async def report(settings: RegistrySettings, import_id: uuid.UUID) -> list[tuple[int, str, str]]:
    found = await fetch(
        settings,
        "SELECT line, field, reason FROM import_error WHERE batch_id = $1 ORDER BY line, id",
        import_id,
    )
    return [(r["line"], r["field"], r["reason"]) for r in found]


# ---------------------------------------------------------------------------- HTTP helpers


async def upload(
    service: RunningService,
    headers: dict[str, str],
    data: bytes,
    *,
    mode: str = "delta",
    filename: str = "dtsen.csv",
) -> Any:
    return await service.client.post(
        "/v1/imports",
        files={"file": (filename, data, "text/csv")},
        data={"mode": mode},
        headers=headers,
    )


async def finished(service: RunningService, headers: dict[str, str], import_id: str) -> Any:
    async def probe() -> Any:
        response = await service.client.get(f"/v1/imports/{import_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if body["status"] in ("completed", "failed") else None

    return await eventually(probe, what=f"import {import_id} to finish")


async def import_over_http(
    service: RunningService, headers: dict[str, str], data: bytes, *, mode: str = "delta"
) -> dict[str, Any]:
    response = await upload(service, headers, data, mode=mode)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/imports/{response.json()['id']}"
    body = await finished(service, headers, response.json()["id"])
    assert body["status"] == "completed", body
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- tests


class TestValidation:
    async def test_bad_rows_are_reported_and_their_households_skipped(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        good = family(2)
        bad_nik = family(2)  # its spouse's NIK has serial 0000: the whole card is skipped
        bad_nik.members[1].nik = bad_nik.members[1].nik[:12] + "0000"
        bad_village = family(1)
        bad_village.village_code = "1771019999"
        mixed = family(2)  # the two rows disagree on the decile
        second_head = family(2)
        second_head.members[1].relationship = "head"
        short = ["1771012608250001", "1771011001", "too", "few"]
        data = rows([good, bad_nik, bad_village, mixed, second_head]) + [short]
        data[6][3] = "7"  # mixed's second row (line 8): decile 7 instead of 3
        summary = await run(registry_settings, tmp_path, csv_bytes(data))

        assert summary.status == "completed"
        assert (summary.total_rows, summary.valid_rows, summary.invalid_rows) == (10, 2, 8)
        assert summary.event_counts == {
            "registry.household.registered.v1": 1,
            "registry.person.registered.v1": 2,
        }
        errors = await report(registry_settings, summary.id)
        assert (5, "nik", "NIK serial 0000 is never issued (serials start at 0001)") in errors
        assert (4, "kk", "household skipped: line 5 of the same KK is not valid") in errors
        assert (6, "village_code", "'1771019999' is not a Kemendagri village code") in errors
        assert (8, "decile", "decile differs from line 7 of the same KK (household columns "
                "must be equal on every member row)") in errors  # fmt: skip
        assert (7, "kk", "household skipped: line 8 of the same KK is not valid") in errors
        assert (10, "relationship", "a second living head of the same KK (the first is on "
                "line 9)") in errors  # fmt: skip
        assert (11, "", "expected 21 fields, found 4") in errors
        assert {line for line, _, _ in errors} == set(range(4, 12))

        ids = await ids_of(registry_settings, [good, bad_nik, bad_village, mixed, second_head])
        assert set(ids) == {good.kk, *(m.nik for m in good.members)}

    @pytest.mark.parametrize(
        ("change", "field", "reason"),
        [
            ({"birth_date": "1990-02-30"}, "birth_date", "'1990-02-30' is not a date"),
            ({"sex": "X"}, "sex", "sex must be M or F, found 'X'"),
            ({"status": "deceased"}, "death_date", "a deceased person needs a death_date"),
            ({"death_date": "2020-01-01"}, "death_date", "death_date must be empty unless"),
            ({"floor": "marble"}, "floor", "floor must be one of earth, bamboo, wood"),
            ({"decile": "11"}, "decile", "decile must be 1-10 or empty, found '11'"),
            ({"house_fit": "yes"}, "house_fit", "house_fit must be true or false"),
            ({"full_name": " "}, "full_name", "full_name is empty"),
            ({"kk": "1771013202250001"}, "kk", "KK issue date 32-02 is not a date"),
            ({"nik": "12345"}, "nik", "NIK must be exactly 16 digits"),
            ({"education": "phd"}, "education", "education must be one of none, sd"),
        ],
    )
    async def test_each_field_is_named_with_its_reason(
        self,
        registry_settings: RegistrySettings,
        tmp_path: Path,
        change: dict[str, str],
        field: str,
        reason: str,
    ) -> None:
        card = family(1)
        row = dict(zip(COLUMNS, rows([card])[0], strict=True)) | change
        summary = await run(registry_settings, tmp_path, csv_bytes([list(row.values())]))
        errors = await report(registry_settings, summary.id)
        assert [(line, name) for line, name, _ in errors] == [(2, field)], errors
        assert reason in errors[0][2]
        assert summary.events_emitted == 0

    async def test_a_wrong_header_fails_the_import(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        data = csv_bytes(rows([family(1)]), header=["nik", *COLUMNS[1:]])
        summary = await run(registry_settings, tmp_path, data)
        assert summary.status == "failed"
        assert summary.failure is not None
        assert summary.failure.startswith("the header must be")
        assert [line for line, _, _ in await report(registry_settings, summary.id)] == [1]

    async def test_files_copy_cannot_take_are_read_line_by_line(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        # A quoted line break, a blank line and spaces around values: line numbers count
        # physical lines and the values are trimmed, whichever way the file was staged.
        first, spaced, last = family(1), family(1), family(2)
        last.members[1].sex = "X"
        data = rows([first, spaced, last])
        data[0][2] = "Jl. Merapi\nRT 003"
        data[1] = [f"  {value} " for value in data[1]]
        lines = csv_bytes(data).split(b"\n")
        text = b"\n".join([*lines[:3], b"", *lines[3:]])
        summary = await run(registry_settings, tmp_path, text)
        assert (summary.valid_rows, summary.invalid_rows) == (2, 2)
        errors = await report(registry_settings, summary.id)
        assert [(line, name) for line, name, _ in errors] == [(6, "kk"), (7, "sex")]
        stored = await fetch(
            registry_settings,
            "SELECT kk, address FROM household WHERE kk = ANY($1) ORDER BY address",
            [first.kk, spaced.kk],
        )
        assert [r["address"] for r in stored] == ["Jl. Merapi\nRT 003", spaced.address]

    async def test_a_living_head_left_in_place_blocks_a_new_head(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        card = family(2)
        await run(registry_settings, tmp_path, csv_bytes(rows([card])))
        newcomer = member("head")
        delta = replace(card, members=[newcomer])  # the old head is not in this delta
        summary = await run(registry_settings, tmp_path, csv_bytes(rows([delta])))
        assert summary.events_emitted == 0
        [(line, name, reason)] = await report(registry_settings, summary.id)
        assert (line, name) == (2, "relationship")
        assert reason.startswith("the KK already has a living head in the registry")


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _nik_cases() -> list[tuple[str, str, str]]:
    """(NIK, birth date, sex): valid ones, every rule broken, and random date parts."""
    rng = random.Random(3)
    cases = []
    for born, sex in [
        (date(1987, 4, 9), "M"),
        (date(1987, 4, 9), "F"),
        (date(2000, 2, 29), "F"),
        (date(1900, 2, 28), "M"),
        (date(2024, 12, 31), "F"),
        (date(1999, 1, 1), "M"),
    ]:
        nik = make_nik(birth_date=born, sex=sex, serial=17)
        other = "F" if sex == "M" else "M"
        cases += [
            (nik, born.isoformat(), sex),
            (nik, born.isoformat(), other),  # the +40 says the other sex
            (nik[:12] + "0000", born.isoformat(), sex),
            ("999999" + nik[6:], born.isoformat(), sex),  # no such district
            (nik, (born - timedelta(days=1)).isoformat(), sex),
            (nik, _years_later(born, -100).isoformat(), sex),  # another century: fine
            (nik, _years_later(born, 1).isoformat(), sex),
            (nik[:15], born.isoformat(), sex),
            (nik[:15] + "x", born.isoformat(), sex),
            (nik + "1", born.isoformat(), sex),
        ]
    for _ in range(300):  # random date parts against random birth dates near them
        born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 27000))
        sex = rng.choice("MF")
        nik = make_nik(birth_date=born, sex=sex)
        digits = list(nik)
        for _ in range(rng.randint(0, 2)):
            digits[rng.randint(6, 11)] = str(rng.randint(0, 9))
        cases.append(("".join(digits), born.isoformat(), sex))
    return cases


def _kk_cases(today: date) -> list[str]:
    rng = random.Random(4)
    cards = [
        f"{DISTRICT}{part}{serial}"
        for part in ("010101", "290200", "290201", "310426", "311126", "320101", "450101")
        + (f"{today:%d%m%y}", f"{today + timedelta(days=1):%d%m%y}", "000000", "011300")
        for serial in ("0001", "0000")
    ]
    cards += ["99999901010" + "10001", DISTRICT + "0101010001x", DISTRICT + "01010100011"]
    cards += [
        f"{DISTRICT}{rng.randint(0, 35):02d}{rng.randint(0, 13):02d}{rng.randint(0, 99):02d}0001"
        for _ in range(400)
    ]
    return cards


class TestSqlChecksAgreeWithNik:
    """The import judges rows in SQL and explains them with `registry.nik`: both must give the
    same verdict on the same cases, or a clerk would read a reason for a row that was fine."""

    async def test_nik(self, registry_settings: RegistrySettings) -> None:
        cases = _nik_cases()
        found = await fetch(
            registry_settings,
            f"SELECT c.i, {nik_valid_sql('c.nik', 'c.birth', 'c.sex')} AS ok "
            "FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY "
            "AS c(nik, birth, sex, i) ORDER BY c.i",
            *map(list, zip(*cases, strict=True)),
        )
        districts = await self._districts(registry_settings)
        expected = [
            not nik_problems(nik, birth_date=date.fromisoformat(born), sex=sex)
            and nik[:6] in districts
            for nik, born, sex in cases
        ]
        assert [r["ok"] for r in found] == expected
        assert 20 < sum(expected) < len(cases) - 20  # both verdicts are well represented

    async def test_kk(self, registry_settings: RegistrySettings) -> None:
        today = date.today()
        cases = _kk_cases(today)
        found = await fetch(
            registry_settings,
            f"SELECT c.i, {kk_valid_sql('c.kk')} AS ok "
            "FROM unnest($2::text[]) WITH ORDINALITY AS c(kk, i) ORDER BY c.i",
            kk_issue_dates(today),
            cases,
        )
        districts = await self._districts(registry_settings)
        expected = [not kk_problems(kk, today=today) and kk[:6] in districts for kk in cases]
        assert [r["ok"] for r in found] == expected
        assert 20 < sum(expected) < len(cases) - 20

    async def test_dates(self, registry_settings: RegistrySettings) -> None:
        cases = [
            "2020-02-29", "2019-02-29", "1900-02-29", "2000-02-29", "0001-01-01", "0000-01-01",
            "9999-12-31", "2020-13-01", "2020-00-10", "2020-04-31", "2020-04-30", "2020-1-01",
            "2020/01/01", "abcd-ef-gh", "20200101", "", "2020-01-01 ", "\uff12020-01-01",
        ]  # fmt: skip
        found = await fetch(
            registry_settings,
            f"SELECT c.i, {iso_date_sql('c.d')} AS ok "
            "FROM unnest($1::text[]) WITH ORDINALITY AS c(d, i) ORDER BY c.i",
            cases,
        )
        expected = []
        for text in cases:
            try:
                expected.append(len(text) == 10 and bool(date.fromisoformat(text)))
            except ValueError:
                expected.append(False)
        assert [r["ok"] for r in found] == expected

    @staticmethod
    async def _districts(settings: RegistrySettings) -> set[str]:
        rows = await fetch(settings, "SELECT code FROM region WHERE level = 3")
        return {r["code"] for r in rows}


class TestEvents:
    async def test_one_event_per_change_and_a_reimport_changes_nothing(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        headers = auth_header(scopes=IMPORT)
        cards = [family(3), family(2), family(1, village=OTHER_REGENCY_VILLAGE)]
        data = csv_bytes(rows(cards))
        first = await import_over_http(registry_service, headers, data)
        assert (first["total_rows"], first["changed_rows"], first["unchanged_rows"]) == (6, 6, 0)
        assert first["event_counts"] == {
            "registry.household.registered.v1": 3,
            "registry.person.registered.v1": 6,
        }
        ids = await ids_of(registry_settings, cards)
        assert len(ids) == 9
        envelopes = await outbox(registry_settings, ids.values())
        assert by_type(envelopes) == {"household.registered.v1": 3, "person.registered.v1": 6}
        head = next(e for e in envelopes if e["subject"] == ids[cards[0].members[0].nik])
        assert head["data"]["household_id"] == ids[cards[0].kk]
        assert head["data"]["relationship"] == "head"

        again = await import_over_http(registry_service, headers, data)
        assert (again["changed_rows"], again["unchanged_rows"]) == (0, 6)
        assert (again["events_emitted"], again["event_counts"]) == (0, {})
        assert len(await outbox(registry_settings, ids.values())) == 9
        versions = await fetch(
            registry_settings,
            "SELECT max(version) AS v FROM person WHERE id = ANY($1::uuid[])",
            list(ids.values()),
        )
        assert versions[0]["v"] == 1

    async def test_a_decile_a_death_and_a_move_emit_exactly_those_events(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        headers = auth_header(scopes=IMPORT)
        home, other = family(3), family(2)
        await import_over_http(registry_service, headers, csv_bytes(rows([home, other])))
        ids = await ids_of(registry_settings, [home, other])
        before = len(await outbox(registry_settings, ids.values()))

        head, spouse, child = home.members
        died = replace(spouse, status="deceased", death_date=date(2026, 1, 15))
        moved = replace(child, relationship="other")
        delta = [
            replace(home, decile=5, members=[head, died]),
            replace(other, members=[*other.members, moved]),
        ]
        body = await import_over_http(registry_service, headers, csv_bytes(rows(delta)))
        assert body["event_counts"] == {
            "registry.household.decile_changed.v1": 1,
            "registry.person.died.v1": 1,
            "registry.person.moved.v1": 1,
        }
        assert (body["changed_rows"], body["unchanged_rows"]) == (3, 2)  # home's rows + the move

        new = (await outbox(registry_settings, ids.values()))[before:]
        assert by_type(new) == {
            "household.decile_changed.v1": 1,
            "person.died.v1": 1,
            "person.moved.v1": 1,
        }
        data = {e["subject"]: e["data"] for e in new}
        assert data[ids[home.kk]]["previous_decile"] == 3
        assert (data[ids[home.kk]]["decile"], data[ids[home.kk]]["version"]) == (5, 2)
        assert data[ids[spouse.nik]]["death_date"] == "2026-01-15"
        assert data[ids[spouse.nik]]["source"] == "bps_reconciliation"
        assert data[ids[child.nik]]["from_household_id"] == ids[home.kk]
        assert data[ids[child.nik]]["household_id"] == ids[other.kk]

        again = await import_over_http(registry_service, headers, csv_bytes(rows(delta)))
        assert again["events_emitted"] == 0

    async def test_snapshot_moves_out_the_members_it_no_longer_lists(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        listed, untouched = family(4), family(2)
        await run(registry_settings, tmp_path, csv_bytes(rows([listed, untouched])))
        ids = await ids_of(registry_settings, [listed, untouched])
        before = len(await outbox(registry_settings, ids.values()))
        gone = listed.members[3]

        snapshot = csv_bytes(rows([replace(listed, members=listed.members[:3])]))
        summary = await run(registry_settings, tmp_path, snapshot, mode="snapshot")
        assert (summary.moved_out, summary.changed_rows, summary.unchanged_rows) == (1, 0, 3)
        new = (await outbox(registry_settings, ids.values()))[before:]
        assert [(e["type"], e["subject"]) for e in new] == [
            ("registry.person.moved.v1", ids[gone.nik])
        ]
        assert new[0]["data"]["status"] == "moved"
        assert new[0]["data"]["household_id"] is None
        assert new[0]["data"]["from_household_id"] == ids[listed.kk]
        alive = await fetch(
            registry_settings,
            "SELECT count(*) AS n FROM person WHERE id = ANY($1::uuid[]) AND status = 'alive'",
            [ids[m.nik] for m in untouched.members],
        )
        assert alive[0]["n"] == 2  # a household the snapshot does not list is never touched

        again = await run(registry_settings, tmp_path, snapshot, mode="snapshot")
        assert (again.moved_out, again.events_emitted) == (0, 0)

    async def test_a_new_head_takes_over_when_the_old_one_steps_down(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        card = family(2)
        await run(registry_settings, tmp_path, csv_bytes(rows([card])))
        old, spouse = card.members
        swapped = replace(
            card,
            members=[replace(old, relationship="spouse"), replace(spouse, relationship="head")],
        )
        summary = await run(registry_settings, tmp_path, csv_bytes(rows([swapped])))
        assert summary.event_counts == {"registry.person.updated.v1": 2}
        assert summary.batches_failed == 0


class TestBatches:
    async def test_a_failing_batch_rolls_back_whole_and_the_others_apply(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        first, middle, last = family(2), family(2), family(2)
        poison = f"Gagal {uuid.uuid4().hex[:8]}"
        middle.members[1].full_name = poison
        constraint = f"test_reject_{poison[-8:]}"
        await fetch(
            registry_settings,
            f"ALTER TABLE person ADD CONSTRAINT {constraint} "
            f"CHECK (full_name <> '{poison}') NOT VALID",
        )
        data = csv_bytes(rows([first, middle, last]))
        try:
            summary = await run(registry_settings, tmp_path, data, batch_size=2)
        finally:
            await fetch(registry_settings, f"ALTER TABLE person DROP CONSTRAINT {constraint}")

        assert (summary.status, summary.batches_total, summary.batches_failed) == (
            "completed",
            3,
            1,
        )
        ids = await ids_of(registry_settings, [first, middle, last])
        assert middle.kk not in ids  # its household was inserted before the failure: rolled back
        assert not {m.nik for m in middle.members} & set(ids)
        assert len(ids) == 6
        assert by_type(await outbox(registry_settings, ids.values())) == {
            "household.registered.v1": 2,
            "person.registered.v1": 4,
        }
        assert summary.event_counts == {
            "registry.household.registered.v1": 2,
            "registry.person.registered.v1": 4,
        }
        errors = await report(registry_settings, summary.id)
        assert [line for line, _, _ in errors] == [4, 5]
        assert all(r.startswith("batch 2 was rolled back: 23514") for _, _, r in errors)
        assert constraint in errors[0][2]

        retry = await run(registry_settings, tmp_path, data, batch_size=2)
        assert retry.event_counts == {
            "registry.household.registered.v1": 1,
            "registry.person.registered.v1": 2,
        }
        assert (retry.changed_rows, retry.unchanged_rows) == (2, 4)

    async def test_a_move_between_two_households_is_applied_in_one_batch(
        self, registry_settings: RegistrySettings, tmp_path: Path
    ) -> None:
        # The head of `left` becomes the head of `right`, whose head steps down: with one
        # household per batch the move would clash; tied into one batch it applies.
        left, right = family(2), family(2)
        filler = [family(2) for _ in range(2)]
        await run(registry_settings, tmp_path, csv_bytes(rows([left, *filler, right])))
        mover, stays = left.members
        old_head, spouse = right.members
        delta = [
            replace(left, members=[replace(stays, relationship="head")]),
            *filler,
            replace(
                right,
                members=[
                    replace(mover, relationship="head"),
                    replace(old_head, relationship="parent"),
                    spouse,
                ],
            ),
        ]
        summary = await run(registry_settings, tmp_path, csv_bytes(rows(delta)), batch_size=2)
        assert summary.batches_failed == 0
        assert summary.event_counts == {
            "registry.person.moved.v1": 1,
            "registry.person.updated.v1": 2,
        }


class TestApi:
    async def test_needs_the_import_scope(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        data = csv_bytes(rows([family(1)]))
        response = await upload(registry_service, auth_header(scopes=["registry:write"]), data)
        assert response.status_code == 403

    async def test_regional_staff_cannot_import(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        headers = auth_header(scopes=IMPORT, regions=["1771"])
        response = await upload(registry_service, headers, csv_bytes(rows([family(1)])))
        assert response.status_code == 403
        assert response.json()["type"].endswith("/imports-are-national")

    async def test_a_file_that_is_not_dtsen_csv_is_422_naming_the_file(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        headers = auth_header(scopes=IMPORT)
        for data in (b"", b"nik,name\n1,2\n", b"\xff\xfe" + csv_bytes([])):
            response = await upload(registry_service, headers, data)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["field"] == "file"

    async def test_a_bad_mode_is_422(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await upload(
            registry_service, auth_header(scopes=IMPORT), csv_bytes([]), mode="full"
        )
        assert response.status_code == 422
        assert "body.mode" in [e["field"] for e in response.json()["errors"]]

    async def test_error_report_downloads_as_csv(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        headers = auth_header(scopes=IMPORT)
        card = family(2)
        card.members[1].sex = "X"
        body = await import_over_http(registry_service, headers, csv_bytes(rows([card])))
        assert body["invalid_rows"] == 2
        response = await registry_service.client.get(body["errors_url"], headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        assert list(csv.reader(io.StringIO(response.text))) == [
            ["line", "field", "reason"],
            ["2", "kk", "household skipped: line 3 of the same KK is not valid"],
            ["3", "sex", "sex must be M or F, found 'X'"],
        ]

    async def test_an_api_process_stages_the_file_and_a_worker_runs_it(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        """Upload to an API-only process (no job runner): the rows are in the database when it
        answers, and the job runner of another process (``registry_service``) imports them
        without the file."""
        headers = auth_header(scopes=IMPORT)
        api_only = create_app(registry_settings, run_relay=False, run_consumers=False)
        async with running_service(api_only) as api:
            assert api.runtime.job_runner is None
            response = await upload(api, headers, csv_bytes(rows([family(2)])))
        assert response.status_code == 202, response.text
        import_id = response.json()["id"]
        (job,) = await fetch(
            registry_settings, "SELECT kind, payload FROM job WHERE key = $1", import_id
        )
        assert (job["kind"], json.loads(job["payload"])) == ("registry.import", {"mode": "delta"})
        body = await finished(registry_service, headers, import_id)
        assert (body["status"], body["valid_rows"], body["changed_rows"]) == ("completed", 2, 2)

    async def test_another_agency_cannot_see_the_import(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await upload(
            registry_service, auth_header(scopes=IMPORT), csv_bytes(rows([family(1)]))
        )
        import_id = response.json()["id"]
        other = auth_header(scopes=IMPORT, agency="BPJS")
        for path in (f"/v1/imports/{import_id}", f"/v1/imports/{import_id}/errors.csv"):
            answer = await registry_service.client.get(path, headers=other)
            assert answer.status_code == 404
            assert answer.json()["type"].endswith("/import-not-found")
        missing = await registry_service.client.get(
            f"/v1/imports/{uuid.uuid4()}", headers=auth_header(scopes=IMPORT)
        )
        assert missing.json()["type"].endswith("/import-not-found")
        await finished(registry_service, auth_header(scopes=IMPORT), import_id)

    async def test_idempotency_key_replays_the_same_import(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        headers = auth_header(scopes=IMPORT) | {"Idempotency-Key": f"dtsen-{uuid.uuid4()}"}
        data = csv_bytes(rows([family(1)]))
        first = await upload(registry_service, headers, data)
        second = await upload(registry_service, headers, data)
        assert first.status_code == second.status_code == 202
        assert second.json()["id"] == first.json()["id"]
        assert second.headers["idempotent-replayed"] == "true"
        changed = await upload(registry_service, headers, data, mode="snapshot")
        assert changed.status_code == 422
        await finished(registry_service, headers, first.json()["id"])
        sha = first.json()["sha256"]
        count = await fetch(
            registry_settings, "SELECT count(*) AS n FROM import_batch WHERE sha256 = $1", sha
        )
        assert count[0]["n"] == 1

    async def test_files_above_the_json_body_limit_are_accepted(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        cards = [family(5) for _ in range(420)]
        for card in cards:
            card.address = "Jl." + " Panjang" * 60
        data = csv_bytes(rows(cards))
        assert len(data) > registry_settings.max_body_bytes
        body = await import_over_http(registry_service, auth_header(scopes=IMPORT), data)
        assert (body["valid_rows"], body["changed_rows"]) == (2100, 2100)
        json_too_big = await registry_service.client.post(
            "/v1/persons",
            content=b"{" + b" " * registry_settings.max_body_bytes + b"}",
            headers=auth_header() | {"content-type": "application/json"},
        )
        assert json_too_big.status_code == 413


class TestCommand:
    def test_import_command_prints_the_summary_and_writes_the_report(
        self,
        registry_settings: RegistrySettings,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from typer.testing import CliRunner

        from registry.__main__ import cli

        card = family(2)
        card.members[1].education = "phd"
        path = write(tmp_path, csv_bytes(rows([card, family(1)])))
        monkeypatch.setenv("REGISTRY_DATABASE_URL", registry_settings.database_url)
        result = CliRunner().invoke(
            cli, ["import", str(path), "--mode", "snapshot", "--batch-size", "100"]
        )
        assert result.exit_code == 0, result.output
        assert "snapshot import: completed" in result.output
        assert "registry.person.registered.v1" in result.output
        report_path = path.with_name(path.name + ".errors.csv")
        assert str(report_path.name) in result.output.replace("\n", "")
        lines = list(csv.reader(io.StringIO(report_path.read_text())))
        assert [row[:2] for row in lines] == [["line", "field"], ["2", "kk"], ["3", "education"]]
