"""Fixtures of the SPDCI tests: a registered sender with its key pair, signed envelopes, a real
callback HTTP server, and the registry's public key to check what it signs.

* ``dci_sender``: a fresh sender (registered through the admin API) of agency ``BPJS`` with an
  Ed25519 key and an allow-list holding its own ``callback`` URL. ``await
  dci_sender.post("/registry/sync/search", message, action="search")`` signs and sends;
  ``dci_sender.envelope(...)`` only builds (to tamper with it first).
* ``callback``: a path of its own on the session's callback server (uvicorn on 127.0.0.1);
  ``await callback.wait_for(1)`` returns what arrived, ``callback.fail_next(2, status=500)``
  makes the next answers fail.
* ``registry_key``: verifies an envelope the registry signed (sync answer or callback).
* Responses are checked with :func:`registry.dci.spec.validate_response` (and
  ``validate_request`` for the callbacks the registry sends).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from registry.dci import signature
from registry.dci.api import BASE_PATH
from shared.testing import RunningService, eventually

Headers = Callable[..., dict[str, str]]
AGENCY = "BPJS"
READ_SCOPES = ("registry:read", "registry:read:identity", "registry:read:socioeconomic")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Received:
    """One request the callback server got."""

    path: str
    headers: dict[str, str]
    body: Any

    @property
    def action(self) -> str | None:
        header = self.body.get("header") if isinstance(self.body, dict) else None
        return header.get("action") if isinstance(header, dict) else None


@dataclass
class CallbackServer:
    """A real HTTP server that records every POST and answers ACK (or a planned failure)."""

    base_url: str = ""
    received: dict[str, list[Received]] = field(default_factory=dict)
    planned_failures: dict[str, list[int]] = field(default_factory=dict)

    async def handle(self, request: Request) -> JSONResponse:
        path = "/" + request.path_params["path"]
        try:
            body: Any = await request.json()
        except ValueError:
            body = (await request.body()).decode(errors="replace")
        self.received.setdefault(path, []).append(
            Received(path=path, headers=dict(request.headers), body=body)
        )
        failures = self.planned_failures.get(path)
        if failures:
            return JSONResponse({"error": "planned failure"}, status_code=failures.pop(0))
        return JSONResponse(
            {
                "message": {
                    "ack_status": "ACK",
                    "timestamp": now_iso(),
                    "correlation_id": str(uuid.uuid4()),
                }
            }
        )


@dataclass
class CallbackEndpoint:
    """One test's URL on the callback server."""

    server: CallbackServer
    path: str

    @property
    def url(self) -> str:
        return self.server.base_url + self.path

    @property
    def requests(self) -> list[Received]:
        return self.server.received.get(self.path, [])

    def fail_next(self, count: int, *, status: int = 500) -> None:
        self.server.planned_failures[self.path] = [status] * count

    async def wait_for(
        self, count: int, *, action: str | None = None, within: float = 60.0
    ) -> list[Received]:
        """The first ``count`` requests (of ``action``, if given), once they have arrived."""

        async def arrived() -> list[Received] | None:
            matching = [r for r in self.requests if action is None or r.action == action]
            return matching[:count] if len(matching) >= count else None

        return await eventually(arrived, within=within, what=f"{count} callback(s) {action}")


@pytest_asyncio.fixture(scope="session")
async def callback_server() -> AsyncIterator[CallbackServer]:
    server = CallbackServer()
    app = Starlette(routes=[Route("/{path:path}", server.handle, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
    server.base_url = f"http://127.0.0.1:{port}"
    yield server
    uvicorn_server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def callback(callback_server: CallbackServer) -> CallbackEndpoint:
    return CallbackEndpoint(server=callback_server, path=f"/cb/{uuid.uuid4().hex}/on-callback")


@dataclass
class Sender:
    """A registered SPDCI sender the test speaks as."""

    service: RunningService
    sender_id: str
    agency: str
    key_id: str
    private_key: Ed25519PrivateKey
    callback: CallbackEndpoint
    auth_header: Headers
    scopes: tuple[str, ...] = READ_SCOPES
    regions: tuple[str, ...] = ()

    def headers(self, **overrides: Any) -> dict[str, str]:
        kwargs: dict[str, Any] = {
            "agency": self.agency,
            "scopes": list(self.scopes),
            "regions": list(self.regions),
        }
        kwargs.update(overrides)
        return self.auth_header(**kwargs)

    def header(self, action: str, /, *, total_count: Any = 1, **fields: Any) -> dict[str, Any]:
        header: dict[str, Any] = {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now_iso(),
            "action": action,
            "sender_id": self.sender_id,
            "sender_uri": self.callback.url,
            "receiver_id": "simpul-registry",
            "total_count": total_count,
            "is_msg_encrypted": False,
        }
        header.update(fields)
        return header

    def sign(
        self,
        header: dict[str, Any],
        message: Any,
        *,
        key: Ed25519PrivateKey | None = None,
        created: int | None = None,
        validity_seconds: int = 300,
    ) -> str:
        return signature.sign(
            key or self.private_key,
            sender_id=self.sender_id,
            key_id=self.key_id,
            header=header,
            message=message,
            created=created,
            validity_seconds=validity_seconds,
        )

    def envelope(
        self, action: str, message: Any, /, *, total_count: Any = None, **header: Any
    ) -> dict[str, Any]:
        """A signed envelope; ``total_count`` defaults to the number of items in ``message``."""
        if total_count is None:
            total_count = _item_count(message)
        built = self.header(action, total_count=total_count, **header)
        return {"signature": self.sign(built, message), "header": built, "message": message}

    async def send(
        self, path: str, body: Any, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST ``body`` (an envelope) to ``BASE_PATH + path``."""
        return await self.service.client.post(
            BASE_PATH + path, json=body, headers=headers if headers is not None else self.headers()
        )

    async def post(self, path: str, message: Any, *, action: str, **header: Any) -> httpx.Response:
        return await self.send(path, self.envelope(action, message, **header))

    async def search(self, *items: dict[str, Any], sync: bool = True) -> httpx.Response:
        """A SearchRequest of ``items`` (each needs ``search_criteria``; reference ids and
        timestamps are filled in when missing)."""
        message = {
            "transaction_id": uuid.uuid4().hex[:20],
            "search_request": [
                {"reference_id": uuid.uuid4().hex, "timestamp": now_iso(), **item} for item in items
            ],
        }
        path = "/registry/sync/search" if sync else "/registry/search"
        return await self.post(path, message, action="search")


def _item_count(message: Any) -> int:
    if isinstance(message, dict):
        for key in ("search_request", "subscribe_request"):
            if isinstance(message.get(key), list):
                return len(message[key])
    return 1


def public_key_base64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


async def register_sender(
    service: RunningService,
    auth_header: Headers,
    callback: CallbackEndpoint,
    *,
    agency: str = AGENCY,
    allow_list: list[str] | None = None,
) -> Sender:
    key = Ed25519PrivateKey.generate()
    sender_id = f"spmis-{uuid.uuid4().hex[:10]}.example.org"
    response = await service.client.post(
        "/v1/dci/senders",
        json={
            "sender_id": sender_id,
            "agency": agency,
            "name": "test SP-MIS",
            "public_keys": {"k1": signature.public_pem(key)},
            "callback_allow_list": allow_list if allow_list is not None else [callback.url],
        },
        headers=auth_header(scopes=["registry:admin"]),
    )
    assert response.status_code == 201, response.text
    return Sender(
        service=service,
        sender_id=sender_id,
        agency=agency,
        key_id="k1",
        private_key=key,
        callback=callback,
        auth_header=auth_header,
    )


@pytest_asyncio.fixture
async def dci_sender(
    registry_service: RunningService, auth_header: Headers, callback: CallbackEndpoint
) -> Sender:
    return await register_sender(registry_service, auth_header, callback)


@dataclass(frozen=True)
class RegistryKey:
    """The registry's published key (its JWKS): checks what the registry signed."""

    public_key: Ed25519PublicKey
    kid: str

    def verify(self, envelope: dict[str, Any]) -> None:
        parsed = signature.parse(envelope["signature"])
        assert f"{parsed.sender_id}|{parsed.key_id}|ed25519" == self.kid
        signature.verify(parsed, self.public_key, envelope["header"], envelope["message"])


@pytest_asyncio.fixture(scope="session")
async def registry_key(registry_service: RunningService) -> RegistryKey:
    response = await registry_service.client.get(f"{BASE_PATH}/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    (jwk,) = response.json()["keys"]
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    return RegistryKey(public_key=Ed25519PublicKey.from_public_bytes(raw), kid=jwk["kid"])
