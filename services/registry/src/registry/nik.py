"""NIK and KK structure rules as Dukcapil issues them.

NIK digits 1-6: the district (kecamatan) code where the NIK was issued; 7-12: birth date DDMMYY
with 40 added to DD for women; 13-16: a serial from 0001.

KK (family card) digits 1-6: the district where the card was issued; 7-12: the issue date DDMMYY
(no +40: a card has no sex); 13-16: a serial from 0001.

Whether the district exists is checked against the region table by the caller.

The words here are the registry's reasons wherever it refuses a value: the API's validation
errors and the import's error report quote the same functions, so a clerk reads one sentence
for one mistake.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

__all__ = [
    "future_date_problem",
    "kk_format_problem",
    "kk_problems",
    "nik_format_problem",
    "nik_problems",
    "today_in_indonesia",
]

# The easternmost Indonesian time zone (WIT): a birth "today" in Papua is not in the future.
_WIT = timezone(timedelta(hours=9))


def today_in_indonesia() -> date:
    """The latest date it is anywhere in Indonesia."""
    return datetime.now(_WIT).date()


def future_date_problem(what: str, day: date, *, today: date | None = None) -> str | None:
    """Why ``day`` (a birth or death date, named by ``what``) cannot be, or None."""
    if day > (today or today_in_indonesia()):
        return f"{what} {day.isoformat()} is in the future"
    return None


def _sixteen_digits_problem(name: str, number: str) -> str | None:
    # ASCII only: str.isdigit() also takes Arabic-Indic and superscript digits, which neither
    # Dukcapil nor the database's format constraint does.
    if len(number) == 16 and number.isascii() and number.isdigit():
        return None
    position = next((i for i, c in enumerate(number, 1) if not ("0" <= c <= "9")), None)
    if position is None:
        return f"{name} must be exactly 16 digits, got {len(number)}"
    count = f"{len(number)} character" + ("" if len(number) == 1 else "s")
    return f"{name} must be exactly 16 digits, got {count} with a non-digit at position {position}"


def nik_format_problem(nik: str) -> str | None:
    """Why ``nik`` is not even shaped like a NIK (16 digits), or None."""
    return _sixteen_digits_problem("NIK", nik)


def kk_format_problem(kk: str) -> str | None:
    """Why ``kk`` is not even shaped like a family-card number (16 digits), or None."""
    return _sixteen_digits_problem("KK", kk)


def nik_problems(nik: str, *, birth_date: date | None = None, sex: str | None = None) -> list[str]:
    """Everything wrong with ``nik`` (empty when it is valid), in words a clerk understands."""
    if malformed := nik_format_problem(nik):
        return [malformed]
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
    if malformed := kk_format_problem(kk):
        return [malformed]
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
