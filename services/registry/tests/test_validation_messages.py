"""The registry's own reasons for a malformed NIK or KK and for a birth date in the future: the
same sentence in a 422 of the API as in an import's error report, never pydantic's generic one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from registry.fields import KK_PATTERN, NIK_PATTERN
from registry.nik import kk_format_problem, nik_format_problem, nik_problems, today_in_indonesia
from registry.reconciliation.staging import COLUMNS
from registry.settings import RegistrySettings
from shared.testing import RunningService

from .factories import VILLAGE, make_nik, person_body
from .test_reconciliation import csv_bytes, family, report, rows, run

Headers = Callable[..., dict[str, str]]
PURPOSE = {"purpose": "PBI-JK eligibility check"}

# (value, what the reason says it got): 15 digits, 17 digits, a letter O for a zero.
MALFORMED = [
    ("177101450990000", "got 15"),
    ("17710145099000011", "got 17"),
    ("1771014509900O01", "got 16 characters with a non-digit at position 14"),
]
BAD_NUMBERS = [value for value, _ in MALFORMED]


def sixteen_digits(name: str, got: str) -> str:
    return f"{name} must be exactly 16 digits, {got}"


def refusal(response: Response) -> list[tuple[str, str]]:
    """(field, message) of a 422 problem, checked to say the same in its ``detail``."""
    assert response.status_code == 422, response.text
    problem = response.json()
    errors = [(error["field"], error["message"]) for error in problem["errors"]]
    assert problem["detail"] == "; ".join(f"{field}: {message}" for field, message in errors)
    return errors


async def post_person(service: RunningService, headers: Headers, **change: Any) -> Response:
    return await service.client.post("/v1/persons", json=person_body(**change), headers=headers())


async def post_household(service: RunningService, headers: Headers, kk: str) -> Response:
    body = {"kk": kk, "village_code": VILLAGE}
    return await service.client.post("/v1/households", json=body, headers=headers())


class TestNikAndKk:
    @pytest.mark.parametrize(
        "text",
        [
            "1771014509900001",
            "177101450990000",
            "17710145099000011",
            "1771014509900O01",
            "",
            "1771014509900001\n",
            " 1771014509900001",
            "177101\u00b2509900001",  # superscript two: str.isdigit() takes it
            "\u0661" * 16,  # Arabic-Indic one: str.isdigit() takes it too
        ],
    )
    def test_refused_exactly_when_the_documented_pattern_does_not_match(self, text: str) -> None:
        # The OpenAPI pattern, and the hot lookup path's regular expression, must not lie.
        matches = re.fullmatch(NIK_PATTERN, text) is not None
        assert (nik_format_problem(text) is None, kk_format_problem(text) is None) == (
            matches,
            re.fullmatch(KK_PATTERN, text) is not None,
        )
        assert (nik_problems(text) == [nik_format_problem(text)]) is not matches

    @pytest.mark.parametrize(("nik", "got"), MALFORMED)
    async def test_a_malformed_nik_in_a_body_gets_the_registry_reason(
        self, registry_service: RunningService, auth_header: Headers, nik: str, got: str
    ) -> None:
        response = await post_person(registry_service, auth_header, nik=nik)
        assert refusal(response) == [("body.nik", sixteen_digits("NIK", got))]

    @pytest.mark.parametrize(("nik", "got"), MALFORMED)
    async def test_a_malformed_nik_in_the_path_gets_the_registry_reason(
        self, registry_service: RunningService, auth_header: Headers, nik: str, got: str
    ) -> None:
        # Also the way past the hot lookup path, which hands malformed NIKs to the route.
        response = await registry_service.client.get(
            f"/v1/persons/by-nik/{nik}", params=PURPOSE, headers=auth_header()
        )
        assert refusal(response) == [("path.nik", sixteen_digits("NIK", got))]

    @pytest.mark.parametrize(("kk", "got"), MALFORMED)
    async def test_a_malformed_kk_gets_the_registry_reason_on_every_route(
        self, registry_service: RunningService, auth_header: Headers, kk: str, got: str
    ) -> None:
        # The body is judged before the household is looked up: no card needs to exist.
        card = f"/v1/households/{uuid.uuid4()}"
        someone = str(uuid.uuid4())
        responses = {
            "body.kk": [
                await post_household(registry_service, auth_header, kk),
                await registry_service.client.post(
                    f"{card}/move",
                    json={"village_code": VILLAGE, "address": "Jl. Merapi No. 1", "kk": kk},
                    headers=auth_header(),
                ),
                await registry_service.client.post(
                    f"{card}/split",
                    json={"person_ids": [someone], "kk": kk, "head_id": someone},
                    headers=auth_header(),
                ),
            ],
            "path.kk": [
                await registry_service.client.get(
                    f"/v1/households/by-kk/{kk}", params=PURPOSE, headers=auth_header()
                )
            ],
        }
        for field, answers in responses.items():
            for response in answers:
                assert refusal(response) == [(field, sixteen_digits("KK", got))]

    async def test_surrounding_spaces_in_a_body_are_still_trimmed(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        body = person_body()
        body["nik"] = f" {body['nik']} "
        response = await registry_service.client.post(
            "/v1/persons", json=body, headers=auth_header()
        )
        assert response.status_code == 201, response.text
        assert response.json()["nik"] == body["nik"].strip()

    async def test_openapi_still_states_the_shape(self, registry_service: RunningService) -> None:
        document = (await registry_service.client.get("/openapi.json")).json()
        shape = {"type": "string", "pattern": "^[0-9]{16}$", "minLength": 16, "maxLength": 16}
        schemas = document["components"]["schemas"]
        by_nik = document["paths"]["/v1/persons/by-nik/{nik}"]["get"]["parameters"]
        by_kk = document["paths"]["/v1/households/by-kk/{kk}"]["get"]["parameters"]
        declared = [
            schemas["PersonCreate"]["properties"]["nik"],
            schemas["HouseholdCreate"]["properties"]["kk"],
            schemas["HouseholdSplitRequest"]["properties"]["kk"],
            schemas["HouseholdMoveRequest"]["properties"]["kk"]["anyOf"][0],
            next(p["schema"] for p in by_nik if p["name"] == "nik"),
            next(p["schema"] for p in by_kk if p["name"] == "kk"),
        ]
        for schema in declared:
            assert shape.items() <= schema.items(), schema


class TestBirthDate:
    async def test_a_birth_date_in_the_future_is_refused(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await post_person(registry_service, auth_header, birth_date=date(2030, 1, 1))
        assert refusal(response) == [("body.birth_date", "birth date 2030-01-01 is in the future")]

    async def test_tomorrow_is_the_future_and_today_is_not(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        today = today_in_indonesia()
        tomorrow = await post_person(
            registry_service, auth_header, birth_date=today + timedelta(days=1)
        )
        assert refusal(tomorrow) == [
            ("body.birth_date", f"birth date {today + timedelta(days=1)} is in the future")
        ]
        newborn = await post_person(registry_service, auth_header, birth_date=today)
        assert newborn.status_code == 201, newborn.text


class TestTheImportSaysTheSame:
    async def test_an_import_reports_what_the_api_answers(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
        tmp_path: Path,
    ) -> None:
        future = date(2030, 1, 1)
        changes = [
            *({"nik": nik} for nik in BAD_NUMBERS),
            *({"kk": kk} for kk in BAD_NUMBERS),
            {
                "birth_date": future.isoformat(),
                "sex": "M",
                "nik": make_nik(birth_date=future, sex="M"),
            },
        ]
        data = [
            list((dict(zip(COLUMNS, rows([family(1)])[0], strict=True)) | change).values())
            for change in changes
        ]
        summary = await run(registry_settings, tmp_path, csv_bytes(data))
        errors = await report(registry_settings, summary.id)
        reported = {(line, field): reason for line, field, reason in errors}

        answered = [
            *[await post_person(registry_service, auth_header, nik=nik) for nik in BAD_NUMBERS],
            *[await post_household(registry_service, auth_header, kk) for kk in BAD_NUMBERS],
            await post_person(registry_service, auth_header, birth_date=future),
        ]
        for line, (response, change) in enumerate(zip(answered, changes, strict=True), start=2):
            [(field, message)] = refusal(response)
            assert reported[line, field.removeprefix("body.")] == message, (change, errors)
