"""SPDCI message signatures (``MsgSignature``): Ed25519 over a digest of header + message.

The scheme is the one OpenSPP's ``spp_dci`` signer and ``spp_dci_server`` verifier use (the
DCI reference server), a draft-cavage HTTP signature carried in the envelope::

    namespace="dci", kidId="{sender_id}|{key_id}|ed25519", algorithm="ed25519",
    created="<unix>", expires="<unix>", headers="(created) (expires) digest",
    signature="<base64 Ed25519 signature of the signing string>"

    signing string = "(created): {created}\\n(expires): {expires}\\ndigest: {digest}"
    digest = base64(SHA-256(json.dumps({"header": header, "message": message},
                                        sort_keys=True, separators=(",", ":"))))

Tolerated on input: a leading ``Signature:``, ``keyId`` for ``kidId``, any ``namespace``, and
the G2P Connect digest form ``BLAKE-512=base64(blake2b-512(...))``. The digest covers the JSON
exactly as received (not a re-serialised model), so any change to header or message after
signing breaks it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALGORITHM",
    "ParsedSignature",
    "RegistrySigner",
    "SignatureInvalid",
    "canonical",
    "load_private_key",
    "load_public_key",
    "parse",
    "public_jwk",
    "public_pem",
    "sign",
    "verify",
]

ALGORITHM = "ed25519"
NAMESPACE = "dci"
DEFAULT_VALIDITY_SECONDS = 300
CLOCK_SKEW_SECONDS = 60
# Received message ids are kept longer than this (see registry.dci.transactions), so a replay
# of a still-valid signed message always meets its first copy.
MAX_VALIDITY_SECONDS = 24 * 3600
_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,"]+)')


class SignatureInvalid(Exception):
    """The signature cannot be accepted; the message says why (for ``err.signature.invalid``)."""


@dataclass(frozen=True)
class ParsedSignature:
    sender_id: str
    key_id: str
    algorithm: str
    created: int
    expires: int
    signature: bytes


def canonical(header: Any, message: Any) -> bytes:
    """The bytes the digest is computed over (OpenSPP's canonical JSON)."""
    return json.dumps(
        {"header": header, "message": message}, sort_keys=True, separators=(",", ":")
    ).encode()


def _digests(header: Any, message: Any) -> list[str]:
    """Accepted digest values: OpenSPP's SHA-256 first, then G2P Connect's BLAKE-512 form."""
    body = canonical(header, message)
    sha256 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    blake = base64.b64encode(hashlib.blake2b(body, digest_size=64).digest()).decode()
    return [sha256, f"BLAKE-512={blake}"]


def _signing_string(created: int, expires: int, digest: str) -> bytes:
    return f"(created): {created}\n(expires): {expires}\ndigest: {digest}".encode()


def parse(value: str) -> ParsedSignature:
    """Read a ``MsgSignature`` string; raises :class:`SignatureInvalid` when malformed."""
    text = value.strip()
    if text.lower().startswith("signature:"):
        text = text[len("signature:") :]
    params: dict[str, str] = {}
    for quoted_key, quoted, bare_key, bare in _PARAM.findall(text):
        params[quoted_key or bare_key] = quoted if quoted_key else bare
    key_ref = params.get("kidId") or params.get("keyId")
    if not key_ref:
        raise SignatureInvalid("the signature names no key (kidId)")
    parts = key_ref.split("|")
    if len(parts) != 3 or not all(parts):
        raise SignatureInvalid('kidId must be "{sender_id}|{key_id}|{algorithm}"')
    algorithm = params.get("algorithm", parts[2]).lower()
    if algorithm != ALGORITHM or parts[2].lower() != ALGORITHM:
        raise SignatureInvalid(f"unsupported signature algorithm {algorithm!r} (use ed25519)")
    try:
        created, expires = int(params["created"]), int(params["expires"])
        raw = base64.b64decode(params["signature"], validate=True)
    except KeyError as exc:
        raise SignatureInvalid(f"the signature lacks {exc.args[0]!r}") from exc
    except (ValueError, binascii.Error) as exc:
        raise SignatureInvalid("created/expires must be unix times, signature base64") from exc
    return ParsedSignature(parts[0], parts[1], algorithm, created, expires, raw)


def verify(
    parsed: ParsedSignature,
    public_key: Ed25519PublicKey,
    header: Any,
    message: Any,
    *,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureInvalid` unless ``parsed`` signs ``header`` + ``message`` now."""
    moment = int(time.time() if now is None else now)
    if parsed.expires < moment:
        raise SignatureInvalid("the signature has expired")
    if parsed.created > moment + CLOCK_SKEW_SECONDS:
        raise SignatureInvalid("the signature was created in the future")
    if parsed.expires < parsed.created:
        raise SignatureInvalid("the signature expires before it was created")
    if parsed.expires - parsed.created > MAX_VALIDITY_SECONDS:
        raise SignatureInvalid("a signature may be valid for 24 hours at most")
    for digest in _digests(header, message):
        try:
            public_key.verify(
                parsed.signature, _signing_string(parsed.created, parsed.expires, digest)
            )
            return
        except InvalidSignature:
            continue
    raise SignatureInvalid("the signature does not match the header and message")


def sign(
    private_key: Ed25519PrivateKey,
    *,
    sender_id: str,
    key_id: str,
    header: Any,
    message: Any,
    created: int | None = None,
    validity_seconds: int = DEFAULT_VALIDITY_SECONDS,
) -> str:
    """A ``MsgSignature`` string for ``header`` + ``message`` (OpenSPP's form)."""
    created = int(time.time()) if created is None else created
    expires = created + validity_seconds
    digest = _digests(header, message)[0]
    raw = private_key.sign(_signing_string(created, expires, digest))
    return (
        f'namespace="{NAMESPACE}", kidId="{sender_id}|{key_id}|{ALGORITHM}", '
        f'algorithm="{ALGORITHM}", created="{created}", expires="{expires}", '
        f'headers="(created) (expires) digest", signature="{base64.b64encode(raw).decode()}"'
    )


def load_public_key(value: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM or from the base64 of its 32 raw bytes."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not an Ed25519 public key (PEM or base64 of 32 bytes)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def load_private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_jwk(key: Ed25519PrivateKey, *, kid: str) -> dict[str, str]:
    """The RFC 8037 JWK of the public half, for ``/.well-known/jwks.json``."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


@dataclass(frozen=True)
class RegistrySigner:
    """The registry's own key: signs its answers and callbacks, published as a JWKS."""

    sender_id: str
    key_id: str
    private_key: Ed25519PrivateKey

    def envelope(self, header: dict[str, Any], message: Any) -> dict[str, Any]:
        signed = sign(
            self.private_key,
            sender_id=self.sender_id,
            key_id=self.key_id,
            header=header,
            message=message,
        )
        return {"signature": signed, "header": header, "message": message}

    def jwks(self) -> dict[str, Any]:
        kid = f"{self.sender_id}|{self.key_id}|{ALGORITHM}"
        return {"keys": [public_jwk(self.private_key, kid=kid)]}
