"""A small demo data set for the embedded runner: a few families in Kota Bengkulu (1771)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from registry import service
from registry.models import Person
from registry.schemas import PersonCreate
from registry.settings import RegistrySettings
from shared.auth import Caller
from shared.db import create_engine, create_sessionmaker, session_scope

SEED_CALLER = Caller(subject="demo-seed", agency="KEMENSOS", scopes=frozenset({"registry:write"}))

# Villages of Kecamatan Selebar (177101), Kota Bengkulu
DEMO_PEOPLE = [
    ("1771010101850001", "Budi Santoso", date(1985, 1, 1), "M", "1771011001"),
    ("1771015203870002", "Sri Wahyuni", date(1987, 3, 12), "F", "1771011001"),
    ("1771012007120003", "Andi Saputra", date(2012, 7, 20), "M", "1771011001"),
    ("1771014811150004", "Putri Lestari", date(2015, 11, 8), "F", "1771011002"),
    ("1771011506600005", "Suparman", date(1960, 6, 15), "M", "1771011002"),
]


async def seed(settings: RegistrySettings) -> None:  # type: ignore[override]
    engine = create_engine(settings.database_url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    try:
        for nik, name, born, sex, village in DEMO_PEOPLE:
            async with session_scope(sessionmaker) as session:
                if await session.scalar(select(Person.id).where(Person.nik == nik)) is not None:
                    continue
                await service.create_person(
                    session,
                    person_in=PersonCreate(
                        nik=nik,
                        full_name=name,
                        birth_date=born,
                        sex=sex,
                        village_code=village,  # type: ignore[arg-type]
                    ),
                    caller=SEED_CALLER,
                )
    finally:
        await engine.dispose()
