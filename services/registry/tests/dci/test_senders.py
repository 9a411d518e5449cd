"""Registering SPDCI senders: the admin API (scope registry:admin) and the CLI."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from registry.__main__ import cli
from registry.dci import signature
from registry.dci.models import DciSender
from registry.dci.senders import url_allowed
from registry.settings import RegistrySettings
from shared.testing import RunningService

from .conftest import Headers

SENDERS = "/v1/dci/senders"


def sender_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender_id": f"mis-{uuid.uuid4().hex[:8]}.example.org",
        "agency": "BPJS",
        "public_keys": {"k1": signature.public_pem(Ed25519PrivateKey.generate())},
        "callback_allow_list": ["https://mis.example.org/dci/"],
    }
    body.update(overrides)
    return body


def raw_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class TestAdminApi:
    async def test_register_read_and_update(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        admin = auth_header(scopes=["registry:admin"])
        body = sender_body(public_keys={"k1": raw_key()})
        created = await registry_service.client.post(SENDERS, json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["active"] is True
        path = f"{SENDERS}/{body['sender_id']}"
        read = await registry_service.client.get(path, headers=admin)
        assert read.json()["callback_allow_list"] == body["callback_allow_list"]
        updated = await registry_service.client.patch(
            path, json={"public_keys": {"k2": raw_key()}, "active": False}, headers=admin
        )
        assert updated.status_code == 200, updated.text
        assert list(updated.json()["public_keys"]) == ["k2"]
        assert updated.json()["active"] is False
        listed = await registry_service.client.get(SENDERS, headers=admin)
        assert body["sender_id"] in [s["sender_id"] for s in listed.json()]

    async def test_registering_twice_is_409(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        admin = auth_header(scopes=["registry:admin"])
        body = sender_body()
        assert (await registry_service.client.post(SENDERS, json=body, headers=admin)).is_success
        again = await registry_service.client.post(SENDERS, json=body, headers=admin)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/dci-sender-exists")

    async def test_unknown_sender_is_404(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await registry_service.client.patch(
            f"{SENDERS}/nobody",
            json={"active": False},
            headers=auth_header(scopes=["registry:admin"]),
        )
        assert response.status_code == 404

    async def test_needs_the_admin_scope(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await registry_service.client.post(
            SENDERS,
            json=sender_body(),
            headers=auth_header(scopes=["registry:read", "registry:write"]),
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"callback_allow_list": ["http://mis.example.org/"]}, "callback_allow_list"),
            ({"callback_allow_list": ["ftp://mis.example.org/"]}, "callback_allow_list"),
            ({"callback_allow_list": ["https://u:p@mis.example.org/"]}, "callback_allow_list"),
            ({"public_keys": {"k1": "not a key"}}, "public_keys"),
            ({"public_keys": {}}, "public_keys"),
            ({"public_keys": {"a|b": raw_key()}}, "public_keys"),
            ({"sender_id": "has space"}, "sender_id"),
        ],
    )
    async def test_bad_registrations_are_422(
        self,
        registry_service: RunningService,
        auth_header: Headers,
        change: dict[str, Any],
        field: str,
    ) -> None:
        response = await registry_service.client.post(
            SENDERS, json=sender_body(**change), headers=auth_header(scopes=["registry:admin"])
        )
        assert response.status_code == 422, response.text
        assert any(field in error["field"] for error in response.json()["errors"])

    async def test_plain_http_only_to_loopback(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        body = sender_body(callback_allow_list=["http://127.0.0.1:9000/cb", "http://localhost/"])
        response = await registry_service.client.post(
            SENDERS, json=body, headers=auth_header(scopes=["registry:admin"])
        )
        assert response.status_code == 201, response.text


class TestAllowList:
    @pytest.mark.parametrize(
        ("url", "allowed"),
        [
            ("https://mis.example.org/dci/on-search", True),
            ("https://mis.example.org/dci", True),
            ("https://MIS.example.org/dci/x", True),
            ("https://mis.example.org/dcix", False),
            ("https://mis.example.org.evil.com/dci/x", False),
            ("https://mis.example.org:8443/dci/x", False),
            ("http://mis.example.org/dci/x", False),
            ("https://evil@mis.example.org/dci/x", False),
            ("not a url", False),
        ],
    )
    def test_prefixes_match_scheme_host_port_and_path(self, url: str, allowed: bool) -> None:
        sender = DciSender(callback_allow_list=["https://mis.example.org/dci/"])
        assert url_allowed(sender, url) is allowed


class TestCli:
    def test_add_and_list(self, registry_settings: RegistrySettings, tmp_path: Any) -> None:
        key_file = tmp_path / "sender.pub.pem"
        key_file.write_text(signature.public_pem(Ed25519PrivateKey.generate()))
        sender_id = f"cli-{uuid.uuid4().hex[:8]}.example.org"
        env = {"REGISTRY_DATABASE_URL": registry_settings.database_url}
        runner = CliRunner()
        added = runner.invoke(
            cli,
            [
                "dci-sender",
                "add",
                sender_id,
                "--agency",
                "BGN",
                "--public-key",
                str(key_file),
                "--callback",
                "https://mbg.example.go.id/spdci/",
                "--max-messages-per-minute",
                "120",
            ],
            env=env,
        )
        assert added.exit_code == 0, added.output
        listed = runner.invoke(cli, ["dci-sender", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert sender_id[:20] in listed.output
        assert "120" in listed.output
        again = runner.invoke(
            cli,
            ["dci-sender", "add", sender_id, "--agency", "BGN", "--public-key", str(key_file)],
            env=env,
        )
        assert again.exit_code == 1
