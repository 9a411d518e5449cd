"""Builders of valid registry inputs for tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from shared.testing import sequence_number

# Kecamatan Selebar, Kota Bengkulu, and one of its villages
DISTRICT = "177101"
VILLAGE = "1771011001"
# Batu Ampar, Kabupaten Bengkulu Selatan (1701): same province, another regency
OTHER_REGENCY_VILLAGE = "1701012001"


def unique_serial() -> int:
    """A NIK or KK serial (0001-9999) no other builder of this test run hands out."""
    return sequence_number() % 9999 + 1


def some_date(n: int, *, first: date, days: int) -> date:
    """One of ``days`` dates from ``first``, spread by ``n`` (a sequence number)."""
    return first + timedelta(days=n * 7919 % days)


def make_nik(
    *, birth_date: date, sex: str, district: str = DISTRICT, serial: int | None = None
) -> str:
    day = birth_date.day + (40 if sex == "F" else 0)
    serial = serial if serial is not None else unique_serial()
    return f"{district}{day:02d}{birth_date:%m%y}{serial:04d}"


def person_body(
    *, birth_date: date | None = None, sex: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid registration; ``overrides`` replace raw fields afterwards (to make it invalid)."""
    n = sequence_number()
    born = birth_date or some_date(n, first=date(1950, 1, 1), days=24_000)
    sex = sex or "MF"[n % 2]
    village = overrides.get("village_code", VILLAGE)
    body = {
        "nik": make_nik(birth_date=born, sex=sex, district=str(village)[:6]),
        "full_name": "Warga Uji",
        "birth_date": born.isoformat(),
        "sex": sex,
        "village_code": village,
    }
    body.update(overrides)
    return body
