"""The working-day calendar on real 2025 and 2026 dates (holidays and cuti bersama)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    WIB,
    WIT,
    WITA,
    Holiday,
    OverrideError,
    WorkingCalendar,
    load_overrides,
    local_day,
    parse_overrides,
)

CALENDAR = WorkingCalendar()
D = date.fromisoformat


class TestRealDates:
    @pytest.mark.parametrize(
        ("day", "name"),
        [
            # 2025
            ("2025-01-27", "Isra Mikraj Nabi Muhammad"),
            ("2025-01-28", "Cuti Bersama Tahun Baru Imlek"),
            ("2025-01-29", "Tahun Baru Imlek"),
            ("2025-03-28", "Cuti Bersama Hari Suci Nyepi"),
            ("2025-03-29", "Hari Suci Nyepi"),  # a Saturday
            ("2025-03-31", "Hari Raya Idul Fitri"),  # 1 Syawal 1446 H
            ("2025-04-01", "Hari kedua dari Hari Raya Idul Fitri"),
            ("2025-04-02", "Cuti Bersama Hari Raya Idul Fitri"),
            ("2025-04-07", "Cuti Bersama Hari Raya Idul Fitri"),
            ("2025-05-12", "Hari Raya Waisak"),
            ("2025-05-13", "Cuti Bersama Hari Raya Waisak"),
            ("2025-06-06", "Hari Raya Idul Adha"),
            ("2025-06-09", "Cuti Bersama Hari Raya Idul Adha"),
            ("2025-08-17", "Hari Kemerdekaan Republik Indonesia"),
            ("2025-12-25", "Hari Raya Natal"),
            ("2025-12-26", "Cuti Bersama Hari Raya Natal"),
            # 2026
            ("2026-02-17", "Tahun Baru Imlek"),
            ("2026-03-18", "Cuti Bersama Hari Suci Nyepi"),
            ("2026-03-19", "Hari Suci Nyepi"),
            ("2026-03-20", "Cuti Bersama Hari Raya Idul Fitri"),
            ("2026-03-21", "Hari Raya Idul Fitri"),  # 1 Syawal 1447 H, a Saturday
            ("2026-03-22", "Hari kedua dari Hari Raya Idul Fitri"),
            ("2026-03-23", "Cuti Bersama Hari Raya Idul Fitri"),
            ("2026-03-24", "Cuti Bersama Hari Raya Idul Fitri"),
            ("2026-05-31", "Hari Raya Waisak"),  # a Sunday
            ("2026-08-17", "Hari Kemerdekaan Republik Indonesia"),
            ("2026-12-24", "Cuti Bersama Hari Raya Natal"),
            ("2026-12-25", "Hari Raya Natal"),
        ],
    )
    def test_holidays_and_cuti_bersama_are_days_off(self, day: str, name: str) -> None:
        assert CALENDAR.holiday_name(D(day)) == name
        assert not CALENDAR.is_working_day(D(day))

    def test_idul_fitri_1446_closes_offices_from_28_march_to_7_april_2025(self) -> None:
        days = [D("2025-03-27") + timedelta(days=i) for i in range(13)]  # Thu 27 Mar - Tue 8 Apr
        assert [day for day in days if CALENDAR.is_working_day(day)] == [
            D("2025-03-27"),
            D("2025-04-08"),
        ]

    def test_cuti_bersama_2026_are_the_eight_days_of_the_decree(self) -> None:
        cuti = [h.date for h in CALENDAR.holidays_in(2026) if h.name.startswith("Cuti Bersama")]
        assert cuti == [
            D(day)
            for day in (
                "2026-02-16",
                "2026-03-18",
                "2026-03-20",
                "2026-03-23",
                "2026-03-24",
                "2026-05-15",
                "2026-05-28",
                "2026-12-24",
            )
        ]

    def test_ordinary_days(self) -> None:
        assert CALENDAR.is_working_day(D("2026-03-17"))  # Tuesday before Nyepi
        assert CALENDAR.is_working_day(D("2025-12-24"))  # no Christmas Eve leave in 2025
        assert CALENDAR.holiday_name(D("2026-07-11")) is None  # a plain Saturday
        assert not CALENDAR.is_working_day(D("2026-07-11"))
        assert not CALENDAR.is_working_day(D("2026-07-12"))

    def test_holidays_in_lists_the_year_in_order_with_sources(self) -> None:
        listed = CALENDAR.holidays_in(2026)
        assert listed[0] == Holiday(D("2026-01-01"), "Tahun Baru Masehi", "library")
        assert [h.date for h in listed] == sorted(h.date for h in listed)
        assert {h.date.year for h in listed} == {2026}
        assert {h.source for h in listed} == {"library"}

    def test_names_in_english_on_request(self) -> None:
        english = WorkingCalendar(language="en_US")
        assert english.holiday_name(D("2026-03-20")) == "Eid al-Fitr Joint Holiday"


class TestCounting:
    def test_complaint_filed_before_nyepi_and_lebaran_2026(self) -> None:
        # Tue 17 Mar; 18-24 Mar are Nyepi, Idul Fitri, cuti bersama and a weekend.
        due = CALENDAR.add_working_days(D("2026-03-17"), 5)
        assert due == D("2026-03-31")  # 25, 26, 27, 30, 31
        assert CALENDAR.working_days_between(D("2026-03-17"), due) == 5

    def test_one_working_day_across_lebaran_2025(self) -> None:
        assert CALENDAR.add_working_days(D("2025-03-27"), 1) == D("2025-04-08")

    def test_across_a_weekend(self) -> None:
        friday = D("2026-07-10")
        assert CALENDAR.add_working_days(friday, 1) == D("2026-07-13")
        assert CALENDAR.add_working_days(friday, 5) == D("2026-07-17")
        assert CALENDAR.working_days_between(friday, D("2026-07-12")) == 0
        assert CALENDAR.working_days_between(friday, D("2026-07-13")) == 1

    def test_across_christmas_and_the_new_year(self) -> None:
        # Tue 23 Dec 2025: 24 Dec works; 25-26 Dec off, weekend, 29-31 Dec work, 1 Jan 2026 off.
        assert CALENDAR.add_working_days(D("2025-12-23"), 3) == D("2025-12-30")
        assert CALENDAR.add_working_days(D("2025-12-23"), 5) == D("2026-01-02")

    def test_zero_days_is_start_or_the_next_working_day(self) -> None:
        assert CALENDAR.add_working_days(D("2026-03-17"), 0) == D("2026-03-17")
        assert CALENDAR.add_working_days(D("2026-03-18"), 0) == D("2026-03-25")
        assert CALENDAR.add_working_days(D("2026-07-11"), 0) == D("2026-07-13")

    def test_start_on_a_holiday_counts_from_the_next_day(self) -> None:
        assert CALENDAR.add_working_days(D("2026-03-21"), 1) == D("2026-03-25")

    def test_negative_n_is_refused(self) -> None:
        with pytest.raises(ValueError, match="n must be >= 0"):
            CALENDAR.add_working_days(D("2026-03-17"), -1)

    def test_between_is_signed(self) -> None:
        assert CALENDAR.working_days_between(D("2026-03-31"), D("2026-03-17")) == -5
        assert CALENDAR.working_days_between(D("2026-03-17"), D("2026-03-17")) == 0


class TestTimeZones:
    # 15:30 UTC on Tue 17 Mar 2026 is 22:30 WIB, 23:30 WITA, but already 00:30 Wed 18 Mar WIT,
    # the Nyepi cuti bersama.
    MOMENT = datetime(2026, 3, 17, 15, 30, tzinfo=UTC)

    def test_the_regency_zone_decides_the_day(self) -> None:
        assert local_day(self.MOMENT, WIB) == D("2026-03-17")
        assert local_day(self.MOMENT, WITA) == D("2026-03-17")
        assert local_day(self.MOMENT, WIT) == D("2026-03-18")
        assert CALENDAR.is_working_day(self.MOMENT, zone=WIB)
        assert not CALENDAR.is_working_day(self.MOMENT, zone="Asia/Jayapura")

    def test_deadlines_from_timestamps(self) -> None:
        assert CALENDAR.add_working_days(self.MOMENT, 5, zone=WIB) == D("2026-03-31")
        assert CALENDAR.add_working_days(self.MOMENT, 5, zone=WIT) == D("2026-03-31")
        assert CALENDAR.add_working_days(self.MOMENT, 0, zone=WIT) == D("2026-03-25")
        later = datetime(2026, 3, 31, 2, 0, tzinfo=UTC)
        assert CALENDAR.working_days_between(self.MOMENT, later, zone=WIB) == 5
        assert CALENDAR.holiday_name(self.MOMENT, zone=WIT) == "Cuti Bersama Hari Suci Nyepi"

    def test_a_datetime_needs_a_zone_and_a_tzinfo(self) -> None:
        with pytest.raises(ValueError, match="needs zone="):
            CALENDAR.is_working_day(self.MOMENT)
        with pytest.raises(ValueError, match="naive datetime"):
            CALENDAR.is_working_day(datetime(2026, 3, 17, 9, 0), zone=WIB)


class TestOverrides:
    def test_adding_a_regional_voting_day(self) -> None:
        calendar = WorkingCalendar.from_mapping(
            {"2026": {"add": {"2026-07-15": "Hari Pemilihan Kepala Daerah"}}}
        )
        assert not calendar.is_working_day(D("2026-07-15"))
        assert calendar.holiday_name(D("2026-07-15")) == "Hari Pemilihan Kepala Daerah"
        assert calendar.add_working_days(D("2026-07-14"), 1) == D("2026-07-16")
        assert calendar.working_days_between(D("2026-07-13"), D("2026-07-17")) == 3
        assert Holiday(D("2026-07-15"), "Hari Pemilihan Kepala Daerah", "override") in (
            calendar.holidays_in(2026)
        )
        assert CALENDAR.is_working_day(D("2026-07-15"))  # other calendars are untouched

    def test_removing_a_day_moved_by_decree(self) -> None:
        calendar = WorkingCalendar.from_mapping({"2026": {"remove": ["2026-12-24"]}})
        assert calendar.is_working_day(D("2026-12-24"))
        assert calendar.holiday_name(D("2026-12-24")) is None
        assert D("2026-12-24") not in [h.date for h in calendar.holidays_in(2026)]
        assert calendar.add_working_days(D("2026-12-23"), 1) == D("2026-12-24")

    def test_an_added_name_wins_over_the_library(self) -> None:
        calendar = WorkingCalendar.from_mapping(
            {"2026": {"add": {"2026-03-20": "Cuti bersama Idul Fitri 1447 H"}}}
        )
        listed = {h.date: h for h in calendar.holidays_in(2026)}
        assert listed[D("2026-03-20")] == Holiday(
            D("2026-03-20"), "Cuti bersama Idul Fitri 1447 H", "override"
        )
        assert len(listed) == len(CALENDAR.holidays_in(2026))

    def test_removing_a_day_the_library_does_not_have_fails_at_start(self) -> None:
        with pytest.raises(OverrideError, match=r"2026\.remove: 2026-12-23 is not a holiday"):
            WorkingCalendar.from_mapping({"2026": {"remove": ["2026-12-23"]}})

    def test_loading_from_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "overrides.json"
        path.write_text(
            json.dumps(
                {
                    "2025": {"add": {"2025-11-27": "Hari Pemilihan Kepala Daerah"}},
                    "2026": {
                        "note": "SKB 3 Menteri (amendment)",
                        "add": {"2026-12-28": "Cuti Bersama Hari Raya Natal"},
                        "remove": ["2026-12-24"],
                    },
                }
            ),
            encoding="utf-8",
        )
        overrides = load_overrides(path)
        assert overrides[2026].note == "SKB 3 Menteri (amendment)"
        assert overrides[2026].remove == frozenset({D("2026-12-24")})
        calendar = WorkingCalendar.from_file(path)
        assert not calendar.is_working_day(D("2025-11-27"))
        assert not calendar.is_working_day(D("2026-12-28"))
        assert calendar.is_working_day(D("2026-12-24"))

    def test_a_json_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "overrides.json"
        path.write_text('{\n  "2026": {\n    "add": {"2026-03-18": "x",}\n  }\n}\n')
        with pytest.raises(OverrideError, match=r"overrides\.json:3:\d+: invalid JSON"):
            load_overrides(path)

    def test_a_duplicate_key_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "overrides.json"
        path.write_text('{"2026": {"add": {"2026-03-18": "a", "2026-03-18": "b"}}}')
        with pytest.raises(OverrideError, match="duplicate key '2026-03-18'"):
            load_overrides(path)

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(OverrideError, match=r"nope\.json: cannot read overrides"):
            load_overrides(tmp_path / "nope.json")

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ([], "the top level must be an object of years"),
            ({"26": {}}, "26: a year key must be four digits"),
            ({"2026": []}, "2026: must be an object"),
            ({"2026": {"added": {}}}, "2026: unknown key 'added'"),
            ({"2026": {"add": ["2026-03-18"]}}, r"2026\.add: must be an object"),
            ({"2026": {"remove": "2026-03-18"}}, r"2026\.remove: must be a list"),
            ({"2026": {"note": 1}}, r"2026\.note: must be a string"),
            ({"2026": {"add": {"2026-02-30": "x"}}}, r"2026\.add\['2026-02-30'\]: .* not a date"),
            ({"2026": {"add": {"2025-03-18": "x"}}}, r"2026\.add\['2025-03-18'\]: .* in 2026"),
            ({"2026": {"add": {"20260318": "x"}}}, r"2026\.add\['20260318'\]"),
            ({"2026": {"add": {"2026-03-18": ""}}}, r"2026\.add\['2026-03-18'\]: the name"),
            ({"2026": {"remove": ["2026-12-24", 5]}}, r"2026\.remove\[1\]: a date must be"),
            (
                {"2026": {"add": {"2026-12-24": "x"}, "remove": ["2026-12-24"]}},
                "2026: 2026-12-24 is both added and removed",
            ),
        ],
    )
    def test_an_invalid_file_names_the_key(
        self, tmp_path: Path, data: object, message: str
    ) -> None:
        path = tmp_path / "overrides.json"
        path.write_text(json.dumps(data))
        with pytest.raises(OverrideError, match=message) as raised:
            load_overrides(path)
        assert str(raised.value).startswith(str(path))

    def test_a_mapping_is_checked_the_same_way(self) -> None:
        with pytest.raises(OverrideError, match=r"^db: 2026\.add\['2026-02-30'\]"):
            parse_overrides({"2026": {"add": {"2026-02-30": "x"}}}, origin="db")


starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
counts = st.integers(min_value=1, max_value=60)


class TestProperties:
    @settings(deadline=None)
    @given(start=starts, n=counts)
    def test_between_undoes_add(self, start: date, n: int) -> None:
        due = CALENDAR.add_working_days(start, n)
        assert due > start
        assert CALENDAR.is_working_day(due)
        assert CALENDAR.working_days_between(start, due) == n
        assert CALENDAR.working_days_between(start, due - timedelta(days=1)) == n - 1

    @settings(deadline=None)
    @given(start=starts, n=st.integers(min_value=0, max_value=60))
    def test_add_grows_with_n_and_with_start(self, start: date, n: int) -> None:
        due = CALENDAR.add_working_days(start, n)
        assert CALENDAR.is_working_day(due)
        assert due >= start
        after = CALENDAR.add_working_days(start, n + 1)
        assert after > due if n else after >= due  # n = 0 may already be the next working day
        assert CALENDAR.add_working_days(start + timedelta(days=1), n) >= due

    @settings(deadline=None)
    @given(a=starts, b=starts, c=starts)
    def test_between_adds_up_and_is_antisymmetric(self, a: date, b: date, c: date) -> None:
        between = CALENDAR.working_days_between
        assert between(a, b) + between(b, c) == between(a, c)
        assert between(a, b) == -between(b, a)
