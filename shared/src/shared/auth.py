"""Bearer JWT authentication and scope/region authorisation.

Tokens are EdDSA (Ed25519) JWTs signed by the identity provider (in development: the key the
embedded runner generates, minted with ``simpul token``). Claims Simpul reads:

* ``sub``: the user or system account; ``agency``: the calling agency (``KEMENSOS``, ``BPJS``...);
* ``scope``: space-separated scopes (``registry:read registry:write``);
* ``regions``: region-code prefixes the caller serves (``["1771"]``); absent or empty means
  national reach;
* ``iss``, ``aud``, ``exp``, ``iat``: checked; the algorithm is pinned (no ``none``, no HS/RS
  confusion).

Routes depend on :func:`require_scope`; region checks go through :meth:`Caller.may_see`.

The OpenAPI document declares the token as the HTTP bearer scheme ``SimpulToken`` (format JWT),
and each operation names it with the scopes it demands, because :func:`require_scope` reads the
token through ``Security(..., scopes=...)``: a new route that authenticates is documented so
without anyone remembering to, and Swagger UI offers "Authorize". Scopes in the requirement of
an ``http`` scheme are what OpenAPI 3.1 (which FastAPI emits) allows for any scheme ("a list of
role names which are required"); an ``oauth2`` scheme would claim token endpoints and flows of
an identity provider that Simpul does not define (partners get tokens from their own IdP
integration), and ``openIdConnect`` a discovery URL there is none of.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Request, Security
from fastapi.params import Security as SecurityParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, Unauthorized

__all__ = [
    "ALGORITHM",
    "DEVELOPMENT_SCOPES",
    "Caller",
    "TokenVerifier",
    "bearer_token_declared",
    "generate_keypair",
    "mint_token",
    "require_scope",
]

ALGORITHM = "EdDSA"
# Every scope the services know: what `simpul token` and the tests grant by default.
DEVELOPMENT_SCOPES = (
    "registry:read",
    "registry:read:identity",
    "registry:read:socioeconomic",
    "registry:write",
    "registry:import",
    "registry:stats",
    "registry:admin",
    "programs:read",
    "programs:enrol",
    "programs:admin",
    "referrals:read",
    "referrals:write",
    "complaints:read",
    "complaints:write",
)
BEARER_SCHEME = "SimpulToken"
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name=BEARER_SCHEME,
    description=(
        "EdDSA-signed JWT from the Simpul identity provider, sent as `Authorization: Bearer "
        "<token>`. Its space-separated `scope` claim must hold every scope the operation "
        "lists with this scheme (else 403); a `regions` claim (region-code prefixes) limits "
        "what the token sees."
    ),
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: verified claims of the bearer token."""

    subject: str
    agency: str
    scopes: frozenset[str]
    regions: tuple[str, ...] = ()
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_national(self) -> bool:
        return not self.regions

    def may_see(self, region_code: str | None) -> bool:
        """True when the record's region lies inside one of the caller's regions."""
        if self.is_national:
            return True
        if region_code is None:
            return False
        return any(region_code.startswith(prefix) for prefix in self.regions)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier:
    """Verifies tokens, remembering verified ones until they expire.

    A partner system sends the same token with thousands of requests; checking the Ed25519
    signature once per token instead of once per request saves a tenth of a millisecond each.
    The cache is keyed by the exact token bytes, so nothing unverified can hit it.
    """

    def __init__(
        self, public_key_pem: str, *, issuer: str, audience: str, cache_size: int = 10_000
    ) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem.encode())
        self._issuer = issuer
        self._audience = audience
        self._cache: OrderedDict[str, Caller] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Caller:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.claims["exp"] > time.time():
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]
        caller = self._verify(token)
        self._cache[token] = caller
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return caller

    def _verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("the token signature is not valid") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from exc
        agency = claims.get("agency")
        if not isinstance(agency, str) or not agency:
            raise Unauthorized("the token has no agency claim")
        scope = claims.get("scope", "")
        regions = claims.get("regions") or []
        if not isinstance(scope, str) or not isinstance(regions, list):
            raise Unauthorized("the token's scope or regions claim is malformed")
        if not all(isinstance(r, str) and r.isdigit() and len(r) <= 10 for r in regions):
            raise Unauthorized("the token's regions claim must hold region codes")
        return Caller(
            subject=str(claims["sub"]),
            agency=agency,
            scopes=frozenset(scope.split()),
            regions=tuple(regions),
            token_id=claims.get("jti"),
            claims=claims,
        )


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None:
        raise Unauthorized("send a bearer token in the Authorization header")
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise Unauthorized("this service has no token key configured")
    caller = verifier.verify(credentials.credentials)
    request.state.caller = caller
    return caller


def require_scope(*scopes: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that authenticates the caller and demands all ``scopes`` (and declares
    both in the operation's OpenAPI ``security``)."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer, scopes=list(scopes)),
    ) -> Caller:
        caller = _authenticate(request, credentials)
        missing = [scope for scope in scopes if not caller.has_scope(scope)]
        if missing:
            raise Forbidden(f"the token lacks the scope {', '.join(missing)}")
        return caller

    dependency.__name__ = "require_" + "_".join(s.replace(":", "_") for s in scopes)
    return dependency


def bearer_token_declared(*scopes: str) -> SecurityParam:
    """For ``dependencies=[...]`` of a route that checks the token itself (the SPDCI routes
    answer a missing token in their standard's envelope, not as a problem): declares the bearer
    scheme with ``scopes`` in the OpenAPI and reads nothing (it never refuses a request)."""
    declared: SecurityParam = Security(_bearer, scopes=list(scopes))
    return declared


def generate_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def mint_token(
    private_key_pem: str,
    *,
    subject: str,
    agency: str,
    scopes: Iterable[str],
    regions: Iterable[str] = (),
    issuer: str = "simpul",
    audience: str = "simpul",
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """Sign a token (development CLI and tests; production tokens come from the IdP)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": subject,
        "agency": agency,
        "scope": " ".join(sorted(set(scopes))),
        "regions": list(regions),
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return jwt.encode(claims, key, algorithm=ALGORITHM)  # type: ignore[arg-type]
