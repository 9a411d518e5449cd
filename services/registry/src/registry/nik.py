"""NIK and KK structure rules as Dukcapil issues them.

NIK digits 1-6: the district (kecamatan) code where the NIK was issued; 7-12: birth date DDMMYY
with 40 added to DD for women; 13-16: a serial from 0001.

KK (family card) digits 1-6: the district where the card was issued; 7-12: the issue date DDMMYY
(no +40: a card has no sex); 13-16: a serial from 0001.

Whether the district exists is checked against the region table by the caller.
"""

from __future__ import annotations

from datetime import date

__all__ = ["kk_problems", "nik_problems"]


def nik_problems(nik: str, *, birth_date: date | None = None, sex: str | None = None) -> list[str]:
    """Everything wrong with ``nik`` (empty when it is valid), in words a clerk understands."""
    if len(nik) != 16 or not nik.isdigit():
        return ["NIK must be exactly 16 digits"]
    problems: list[str] = []
    day, month, year2 = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    female = day > 40
    real_day = day - 40 if female else day
    # The NIK has no century: take it from the stated birth date, else a leap year.
    year = birth_date.year - birth_date.year % 100 + year2 if birth_date else 2000
    try:
        date(year, month, real_day)
    except ValueError:
        problems.append(f"NIK birth date {real_day:02d}-{month:02d} is not a date")
    else:
        if birth_date and (birth_date.day, birth_date.month, birth_date.year % 100) != (
            real_day,
            month,
            year2,
        ):
            problems.append(
                f"NIK birth date {real_day:02d}-{month:02d}-{year2:02d} does not match "
                f"the stated birth date {birth_date:%d-%m-%y}"
            )
    if sex is not None and (sex == "F") != female:
        problems.append(
            "NIK day part is over 40, which marks a woman, but sex is M"
            if female
            else "sex is F, but the NIK day part is not over 40 (women's days add 40)"
        )
    if nik[12:] == "0000":
        problems.append("NIK serial 0000 is never issued (serials start at 0001)")
    return problems


def kk_problems(kk: str, *, today: date | None = None) -> list[str]:
    """Everything wrong with the family-card number ``kk`` (empty when it is valid)."""
    if len(kk) != 16 or not kk.isdigit():
        return ["KK must be exactly 16 digits"]
    problems: list[str] = []
    day, month, year2 = int(kk[6:8]), int(kk[8:10]), int(kk[10:12])
    today = today or date.today()
    # The card has no century either: the latest one that does not put the issue in the future.
    year = today.year - today.year % 100 + year2
    if (year, month, day) > (today.year, today.month, today.day):
        year -= 100
    try:
        date(year, month, day)
    except ValueError:
        problems.append(
            f"KK issue date {day:02d}-{month:02d} is not a date"
            + (" (a KK date has no +40 for women)" if 41 <= day <= 71 else "")
        )
    if kk[12:] == "0000":
        problems.append("KK serial 0000 is never issued (serials start at 0001)")
    return problems
