"""Builders of valid registry inputs for tests."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

# Kecamatan Selebar, Kota Bengkulu, and one of its villages
DISTRICT = "177101"
VILLAGE = "1771011001"
# Batu Ampar, Kabupaten Bengkulu Selatan (1701): same province, another regency
OTHER_REGENCY_VILLAGE = "1701012001"


def make_nik(
    *, birth_date: date, sex: str, district: str = DISTRICT, serial: int | None = None
) -> str:
    day = birth_date.day + (40 if sex == "F" else 0)
    serial = serial if serial is not None else random.randint(1, 9999)
    return f"{district}{day:02d}{birth_date:%m%y}{serial:04d}"


def person_body(
    *, birth_date: date | None = None, sex: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid registration; ``overrides`` replace raw fields afterwards (to make it invalid)."""
    born = birth_date or date(
        random.randint(1950, 2015), random.randint(1, 12), random.randint(1, 28)
    )
    sex = sex or random.choice("MF")
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
