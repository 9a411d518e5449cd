"""Every answer of every service is one its OpenAPI document promises (schemathesis).

Schemathesis generates requests from each service's OpenAPI document (valid and invalid ones:
its examples, coverage and fuzzing phases) and sends them to the service's API served over TCP
by a real ``python -m <service> api`` process, once per kind of caller: a national token with
every scope, a regional one (``regions: ["1771"]``), one with only the read scopes, a token
signed by a key nobody trusts, and no token at all. Each answer must

* not be a 5xx (``not_a_server_error``),
* have a status the operation documents (``status_code_conformance``),
* have a content type documented for that status (``content_type_conformance``),
* fit the schema documented for that status and content type
  (``response_schema_conformance``).

So an undocumented answer or a server error fails CI. The examples are bounded and derandomized
(the same requests on every run), and Hypothesis keeps no example database.

The documents are the apps' own ``app.openapi()`` (building the apps needs no database);
``test_the_served_documents_are_the_ones_tested`` checks they are what the servers serve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from schemathesis import checks as schemathesis_checks
from schemathesis.generation.case import Case

from shared.auth import DEVELOPMENT_SCOPES, generate_keypair, mint_token
from shared.testing import ServedApi

from .conftest import SETTINGS_CLASSES, settings_class

MAX_EXAMPLES = 15  # per operation and kind of caller, in the fuzzing phase
SEED = 20_261_204

CHECKS = [
    schemathesis_checks.not_a_server_error,
    schemathesis_checks.status_code_conformance,
    schemathesis_checks.content_type_conformance,
    schemathesis_checks.response_schema_conformance,
]

READ_SCOPES = tuple(scope for scope in DEVELOPMENT_SCOPES if ":read" in scope)
CALLERS = ("national", "regional", "read-only", "forged", "anonymous")


def _document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, from an app built on settings that reach nothing."""
    create_app = import_module(f"{service}.app").create_app
    settings = settings_class(service)(
        environment="test", database_url="postgresql+asyncpg://nobody@127.0.0.1:9/nothing"
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


DOCUMENTS = {service: _document(service) for service in SETTINGS_CLASSES}
SERVICE_OF_TITLE = {document["info"]["title"]: name for name, document in DOCUMENTS.items()}

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # Each kind of caller sends its own Authorization header (or none).
            "with-security-parameters": False,
        },
    }
)
SCHEMAS = {
    service: schemathesis.openapi.from_dict(document, config=CONFIG)
    for service, document in DOCUMENTS.items()
}


@pytest.fixture(scope="session")
def authorizations(mint: Callable[..., str]) -> dict[str, dict[str, str]]:
    """The Authorization header each kind of caller sends."""
    stranger = generate_keypair()[0]
    forged = mint_token(stranger, subject="mallory", agency="KEMENSOS", scopes=DEVELOPMENT_SCOPES)
    return {
        "national": {"Authorization": f"Bearer {mint()}"},
        "regional": {"Authorization": f"Bearer {mint(agency='DINSOS-1771', regions=['1771'])}"},
        "read-only": {"Authorization": f"Bearer {mint(scopes=READ_SCOPES)}"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "anonymous": {},
    }


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schemathesis.pytest.parametrize(**SCHEMAS)
@pytest.mark.parametrize("caller", CALLERS)
def test_every_answer_is_documented(
    case: Case,
    caller: str,
    served_apis: dict[str, ServedApi],
    authorizations: dict[str, dict[str, str]],
    http: requests.Session,
) -> None:
    service = SERVICE_OF_TITLE[case.operation.schema.raw_schema["info"]["title"]]
    case.call_and_validate(
        base_url=served_apis[service].base_url,
        session=http,
        headers=authorizations[caller],
        checks=CHECKS,
        timeout=30,
    )


@pytest.mark.parametrize("service", sorted(SETTINGS_CLASSES))
async def test_the_served_documents_are_the_ones_tested(
    served_apis: dict[str, ServedApi], service: str
) -> None:
    async with httpx.AsyncClient(base_url=served_apis[service].base_url) as client:
        served = (await client.get("/openapi.json")).json()
    assert served == DOCUMENTS[service]
