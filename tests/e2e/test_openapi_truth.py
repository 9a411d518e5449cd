"""What each service's OpenAPI document promises about the answers machinery gives (a body that
does not parse, a bad Idempotency-Key, the bearer token), checked on every operation, and the
one answer an unparsable body gets whatever is wrong with it.

Schemathesis (``tests/contract/test_openapi_schemathesis.py``) checks that the answers fit the
documents; these tests check that the documents say what a client needs to know."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.auth import DEVELOPMENT_SCOPES
from shared.testing import RunningService

from .conftest import Simpul

PROBLEM = "application/problem+json"
SERVICES = ("registry", "programs", "referrals", "complaints")
METHODS = ("get", "put", "post", "delete", "patch")
SPDCI = "/spdci/"
BEARER = "SimpulToken"
PURPOSE = {"purpose": "scope check"}
# Operations anyone may call: the process's probes, and what an SPDCI partner needs before it
# can call at all (the standard's document and the registry's signing key).
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/spdci/v1.0.0/openapi.yaml"),
    ("get", "/spdci/v1.0.0/.well-known/jwks.json"),
}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def takes_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        p["in"] == "header" and p["name"].lower() == "idempotency-key"
        for p in operation.get("parameters", [])
    )


def document_of(simpul: Simpul, name: str) -> dict[str, Any]:
    service: RunningService = getattr(simpul, name)
    document: dict[str, Any] = service.app.openapi()
    return document


@pytest.mark.parametrize("name", SERVICES)
class TestTheDocument:
    async def test_the_served_document_is_the_app_s(self, simpul: Simpul, name: str) -> None:
        service: RunningService = getattr(simpul, name)
        served = (await service.client.get("/openapi.json")).json()
        assert served == document_of(simpul, name)

    def test_a_body_or_an_idempotency_key_documents_its_400(
        self, simpul: Simpul, name: str
    ) -> None:
        document = document_of(simpul, name)
        checked = 0
        for method, path, operation in operations(document):
            has_body = "requestBody" in operation
            if not has_body and not takes_idempotency_key(operation):
                continue
            checked += 1
            answer = operation["responses"].get("400")
            assert answer is not None, f"{method.upper()} {path} does not document its 400"
            if path.startswith(SPDCI):
                # The SPDCI routes answer in their standard's envelope (ack_status: ERR).
                assert "application/json" in answer["content"], (method, path)
                continue
            assert list(answer["content"]) == [PROBLEM], (method, path, answer)
            assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            if has_body:
                assert "`malformed-body`" in answer["description"], (method, path)
                assert "413" in operation["responses"], (method, path)
            if takes_idempotency_key(operation):
                assert "`bad-request`" in answer["description"], (method, path)
        assert checked, f"{name} has no operation with a body"

    def test_every_problem_is_documented_as_problem_json_only(
        self, simpul: Simpul, name: str
    ) -> None:
        document = document_of(simpul, name)
        for method, path, operation in operations(document):
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if PROBLEM in content:
                    assert list(content) == [PROBLEM], (method, path, status, content)
                    assert content[PROBLEM]["schema"]["$ref"].endswith("/Problem")
        assert "Problem" in document["components"]["schemas"]

    def test_the_idempotency_key_header_states_its_rule(self, simpul: Simpul, name: str) -> None:
        document = document_of(simpul, name)
        headers = [
            parameter
            for _, _, operation in operations(document)
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key"
        ]
        assert headers, f"{name} takes no Idempotency-Key"
        for header in headers:
            schema = header["schema"]
            assert schema["type"] == "string"
            assert (schema["minLength"], schema["maxLength"]) == (8, 255)
            assert schema["pattern"] == "^[A-Za-z0-9._:-]{8,255}$"
            assert header["required"] is False

    def test_every_operation_declares_how_it_authenticates(self, simpul: Simpul, name: str) -> None:
        document = document_of(simpul, name)
        scheme = document["components"]["securitySchemes"][BEARER]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )
        for method, path, operation in operations(document):
            if (method, path) in PUBLIC:
                assert operation["security"] == [], (method, path)
                continue
            (requirement,) = operation["security"]
            scopes = requirement[BEARER]
            assert scopes, (method, path)
            assert all(scope.startswith(f"{name}:") for scope in scopes), (method, path, scopes)
            assert "401" in operation["responses"], (method, path)
            assert "403" in operation["responses"], (method, path)


async def test_the_scopes_documented_are_the_scopes_demanded(
    simpul: Simpul, auth_header: Callable[..., dict[str, str]]
) -> None:
    """A token with every scope but the one an operation documents is refused (403)."""
    service = simpul.programs
    document = document_of(simpul, "programs")
    operation = document["paths"]["/v1/person-facts"]["get"]
    (scope,) = operation["security"][0][BEARER]
    others = [s for s in DEVELOPMENT_SCOPES if s != scope]
    refused = await service.client.get(
        "/v1/person-facts", params=PURPOSE, headers=auth_header(scopes=others)
    )
    assert refused.status_code == 403
    allowed = await service.client.get(
        "/v1/person-facts", params=PURPOSE, headers=auth_header(scopes=[scope])
    )
    assert allowed.status_code == 200


def creating_operations(document: dict[str, Any]) -> Iterator[str]:
    for method, path, operation in operations(document):
        if method != "post" or "{" in path or path.startswith(SPDCI):
            continue
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            yield path


UNPARSABLE = {
    "invalid UTF-8": b'{"full_name": "Siti \xff\xfe Aminah"}',
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    "NUL byte": b'{"full_name": "Siti\x00Aminah"}',
    "cut short": b'{"full_name": ',
}


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("body", sorted(UNPARSABLE))
async def test_an_unparsable_body_is_one_problem(
    simpul: Simpul, auth_header: Callable[..., dict[str, str]], name: str, body: str
) -> None:
    service: RunningService = getattr(simpul, name)
    paths = list(creating_operations(document_of(simpul, name)))
    assert paths
    for path in paths:
        response = await service.client.post(
            path,
            content=UNPARSABLE[body],
            headers={**auth_header(), "content-type": "application/json"},
        )
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "https://simpul.kemensos.go.id/problems/malformed-body"
        assert problem["title"] == "The request body cannot be parsed"
        assert problem["status"] == 400
        assert problem["detail"], problem


@pytest.mark.parametrize(
    ("key", "status"),
    [("short", 400), ("x" * 256, 400), ("not a key!", 400), ("k" * 8, 422), ("k" * 255, 422)],
)
async def test_the_idempotency_key_rule_is_the_documented_one(
    simpul: Simpul, auth_header: Callable[..., dict[str, str]], key: str, status: int
) -> None:
    """Outside 8-255 characters: 400 naming the rule; inside, the (empty) body is judged."""
    response = await simpul.programs.client.post(
        "/v1/enrolments", json={}, headers={**auth_header(), "Idempotency-Key": key}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    if status == 400:
        assert "8-255 characters" in response.json()["detail"]
