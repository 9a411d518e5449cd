"""Every creating endpoint of every service, fed malformed, mistyped, unknown and oversized input:
always a 4xx problem+json that names the problem, never a 500. Endpoints are found from each
service's own OpenAPI document, so a new POST is covered without touching this file.

The registry's SPDCI routes (``/spdci/...``) answer in the standard's own envelope instead of
problem+json: they get their own hostile-input test below."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.testing import RunningService, eventually

from .conftest import Simpul
from .test_journeys import fact_of, register

PROBLEM = "application/problem+json"
SERVICES = ("registry", "programs", "referrals", "complaints")
SPDCI = "/spdci/"


def creating_operations(
    service: RunningService,
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(path, example body, body schema) of each POST with a JSON body and no path parameters."""
    spec = service.app.openapi()
    for path, operations in spec["paths"].items():
        post = operations.get("post")
        if post is None or "{" in path or "requestBody" not in post or path.startswith(SPDCI):
            continue
        if "application/json" not in post["requestBody"]["content"]:
            continue  # uploads (multipart) have their own tests
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        examples = schema.get("examples") or [{}]
        yield path, examples[0], schema


@pytest.fixture
def everything(auth_header: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_header()


@pytest.mark.parametrize("name", SERVICES)
class TestHostileInput:
    async def test_every_service_has_a_creating_endpoint(self, simpul: Simpul, name: str) -> None:
        assert list(creating_operations(getattr(simpul, name))), (
            f"{name} documents no creating POST"
        )

    async def test_malformed_json_is_400(
        self, simpul: Simpul, everything: dict[str, str], name: str
    ) -> None:
        service = getattr(simpul, name)
        for path, _, _ in creating_operations(service):
            for raw in (b'{"a": ', b"\xff\xfe", b"[1, 2", b"null"):
                response = await service.client.post(
                    path, content=raw, headers={**everything, "content-type": "application/json"}
                )
                assert response.status_code in (400, 422), (path, raw, response.text)
                assert response.headers["content-type"] == PROBLEM

    async def test_unknown_fields_are_named(
        self, simpul: Simpul, everything: dict[str, str], name: str
    ) -> None:
        service = getattr(simpul, name)
        for path, example, _ in creating_operations(service):
            response = await service.client.post(
                path, json={**example, "is_admin": True}, headers=everything
            )
            assert response.status_code == 422, (path, response.text)
            assert "body.is_admin" in [e["field"] for e in response.json()["errors"]]

    async def test_every_field_with_a_wrong_type_is_named(
        self, simpul: Simpul, everything: dict[str, str], name: str
    ) -> None:
        service = getattr(simpul, name)
        for path, example, schema in creating_operations(service):
            for field in schema.get("properties", {}):
                body = {**example, field: {"nested": ["not", "a", "scalar"]}}
                response = await service.client.post(path, json=body, headers=everything)
                assert response.status_code == 422, (path, field, response.text)
                assert response.headers["content-type"] == PROBLEM
                named = [e["field"] for e in response.json()["errors"]]
                # A mapping field names the entry inside it (body.public_keys.nested).
                assert any(n == f"body.{field}" or n.startswith(f"body.{field}.") for n in named), (
                    response.text
                )

    async def test_missing_required_fields_are_named(
        self, simpul: Simpul, everything: dict[str, str], name: str
    ) -> None:
        service = getattr(simpul, name)
        for path, _, schema in creating_operations(service):
            response = await service.client.post(path, json={}, headers=everything)
            assert response.status_code == 422
            named = {e["field"] for e in response.json()["errors"]}
            assert {f"body.{field}" for field in schema.get("required", [])} <= named

    async def test_oversized_body_is_413(
        self, simpul: Simpul, everything: dict[str, str], name: str
    ) -> None:
        service = getattr(simpul, name)
        for path, example, _ in creating_operations(service):
            padding = "x" * (service.app.state.settings.max_body_bytes + 1)
            response = await service.client.post(
                path, json={**example, "padding": padding}, headers=everything
            )
            assert response.status_code == 413, (path, response.status_code)
            assert response.json()["type"].endswith("/payload-too-large")


NUL = "Siti\u0000Aminah"


def is_string(spec: dict[str, Any]) -> bool:
    """A string, or an optional one (``anyOf: [string, null]``)."""
    return spec.get("type") == "string" or any(
        option.get("type") == "string" for option in spec.get("anyOf", [])
    )


def string_query_parameters(
    service: RunningService,
) -> Iterator[tuple[str, dict[str, str], str]]:
    """(path, the other required query parameters, name) of each string query parameter of
    each GET; path parameters get their example, a uuid or are skipped when neither fits."""
    for template, operations in service.app.openapi()["paths"].items():
        get = operations.get("get")
        if get is None or template.startswith(SPDCI):
            continue
        path, parameters = template, get.get("parameters", [])
        for parameter in (p for p in parameters if p["in"] == "path"):
            schema = parameter["schema"]
            value = (schema.get("examples") or parameter.get("examples") or [None])[0]
            if value is None and schema.get("format") == "uuid":
                value = str(uuid.uuid4())
            if value is None:
                break
            path = path.replace("{" + parameter["name"] + "}", str(value))
        else:
            query = [p for p in parameters if p["in"] == "query" and is_string(p["schema"])]
            for parameter in query:
                required = {
                    other["name"]: "hostile input check" for other in query if other.get("required")
                }
                yield path, required, parameter["name"]


@pytest.mark.parametrize("name", SERVICES)
async def test_nul_characters_in_text_are_refused_not_a_server_error(
    simpul: Simpul, everything: dict[str, str], name: str
) -> None:
    """PostgreSQL cannot store U+0000 in text; the client learns that, the server does not 500.

    Every string field of every creating body and every string query parameter of every GET
    carries one: free text (a name, the audited ``purpose``) reaches the database, a constrained
    value (uuid, enum, pattern) is refused at validation; either way a 4xx problem. Each service
    must get at least one such request (programs' only body fields are a uuid and an enum: its
    NUL reaches the database through ``purpose``)."""
    service = getattr(simpul, name)
    sent: list[str] = []
    for path, example, schema in creating_operations(service):
        for field, spec in schema.get("properties", {}).items():
            if not is_string(spec):
                continue
            response = await service.client.post(
                path, json={**example, field: NUL}, headers=everything
            )
            sent.append(f"POST {path} {field}")
            assert 400 <= response.status_code < 500, (path, field, response.text)
            assert response.headers["content-type"] == PROBLEM, (path, field, response.text)
    for path, required, parameter in string_query_parameters(service):
        response = await service.client.get(
            path, params={**required, parameter: NUL}, headers=everything
        )
        sent.append(f"GET {path} ?{parameter}")
        # A read that finds nothing stores nothing (no audit row), so it may answer 200.
        assert response.status_code < 500, (path, parameter, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM, (path, parameter, response.text)
    assert sent, f"{name}: no request carried a NUL"


@pytest.mark.parametrize(
    ("name", "path"),
    [("registry", "/v1/persons/{id}"), ("programs", "/v1/person-facts/{id}")],
)
async def test_a_nul_in_the_audited_purpose_of_a_real_read_is_refused(
    simpul: Simpul, everything: dict[str, str], name: str, path: str
) -> None:
    """A read that finds a record writes the caller's ``purpose`` to the audit log: a NUL in it
    is the client's 422, not a 500 (programs takes no free text in its bodies, so this is where
    its hostile text reaches PostgreSQL)."""
    person = await register(simpul, everything)
    await eventually(
        lambda: fact_of(simpul, person["id"], everything), what="programs learns of the person"
    )
    service = getattr(simpul, name)
    url = path.format(id=person["id"])
    assert (
        await service.client.get(url, params={"purpose": "hostile input check"}, headers=everything)
    ).status_code == 200
    response = await service.client.get(url, params={"purpose": NUL}, headers=everything)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "NUL" in response.json()["detail"], response.text


def spdci_operations(service: RunningService) -> list[str]:
    return [
        path
        for path, operations in service.app.openapi()["paths"].items()
        if path.startswith(SPDCI) and "post" in operations
    ]


async def test_spdci_routes_refuse_hostile_input_in_the_standards_envelope(
    simpul: Simpul, everything: dict[str, str]
) -> None:
    """Malformed, mistyped, incomplete and oversized messages: a 4xx whose body is the spec's
    ``Response`` with ``ack_status: ERR`` and an ``err.*`` code that names the problem."""
    service = simpul.registry
    paths = spdci_operations(service)
    assert paths, "the registry documents no SPDCI route"
    padding = "x" * (service.app.state.settings.max_body_bytes + 1)
    hostile: list[bytes] = [
        b'{"a": ',
        b"\xff\xfe",
        b"null",
        b"[]",
        b"{}",
        b'{"header": "not an object", "message": {}}',
        b'{"header": {"message_id": ["x"]}, "message": 7}',
        b'{"header": {}, "message": {}, "padding": "' + padding.encode() + b'"}',
    ]
    for path in paths:
        for raw in hostile:
            response = await service.client.post(
                path, content=raw, headers={**everything, "content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, (path, raw[:40], response.text)
            if response.status_code == 413:
                continue  # the body limit answers before the route: problem+json
            error = response.json()["message"]
            assert error["ack_status"] == "ERR", (path, raw[:40], response.text)
            assert error["error"]["code"].startswith("err."), response.text
            assert error["error"]["message"], response.text
