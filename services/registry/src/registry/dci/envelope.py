"""The SPDCI envelope (``signature``, ``header``, ``message``): parsing, tolerated defects, header
checks, and the replies built from them.

Three kinds of "no", as the spec layers them:

* :class:`EnvelopeError` -> immediate ``ack_status: "ERR"`` with an ``err.*`` code (HTTP 400):
  the envelope cannot be processed at all (bad JSON, unknown sender, bad signature...).
* :class:`HeaderRejection` -> the answer's (sync) or callback's (async) header says
  ``status: "rjct"`` with an ``rjct.*`` code from ``MsgHeaderStatusReasonCode``.
* per item ``status: "rjct"`` with the item's ``rjct.*`` code; other items are still answered.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "SUPPORTED_VERSION",
    "Envelope",
    "EnvelopeError",
    "HeaderRejection",
    "ack",
    "callback_header",
    "check_header",
    "err",
    "iso",
    "item_purpose",
    "normalise",
    "now_iso",
    "parse_envelope",
    "parse_timestamp",
    "rejection_fields",
    "too_many_rejected",
]

SUPPORTED_VERSION = "1.0.0"
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
# Misspellings of the published specs (see spec/SOURCE.md): accepted, answered corrected.
_KEY_FIXES = {
    "sunscription_codes": "subscription_codes",
    "timesstamp": "timestamp",
    "timesatmp": "timestamp",
    "subscibe_request": "subscribe_request",
    "subscibe_criteria": "subscribe_criteria",
}
_ACTION_FIXES = {"subscibe": "subscribe"}
# Actions of the SPDCI/G2P Connect APIs that a registry never serves: the callbacks a registry
# sends (on-search, notify...) and other registries' verbs. Sending one here is
# ``rjct.action.not_supported``; any other wrong action is ``rjct.action.invalid``.
_UNSERVED_ACTIONS = frozenset(
    {
        "on-search",
        "on-subscribe",
        "on-unsubscribe",
        "notify",
        "txn-on-status",
        "receipt",
        "on-receipt",
        "link",
        "unlink",
        "resolve",
        "update",
        "disburse",
        "on-disburse",
        "verify",
        "issue",
    }
)


class EnvelopeError(Exception):
    """The envelope cannot be processed: answered ``ERR`` with ``code`` (an ``err.*``)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.headers = headers  # e.g. Retry-After of a 429 or 503


@dataclass(frozen=True)
class HeaderRejection:
    code: str
    message: str


@dataclass
class Envelope:
    """A received envelope: ``raw_*`` exactly as sent (what the signature covers) and the
    normalised ``header``/``message`` the registry works with."""

    signature: str | None
    raw_header: dict[str, Any]
    raw_message: Any
    header: dict[str, Any] = field(default_factory=dict)
    message: Any = None

    @property
    def sender_id(self) -> str:
        return str(self.header.get("sender_id", ""))

    @property
    def message_id(self) -> str:
        return str(self.header.get("message_id", ""))


def iso(moment: datetime) -> str:
    """An instant as the spec writes them (RFC 3339, UTC, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 date-time with an offset, or None (naive times are not instants)."""
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def normalise(value: Any) -> Any:
    """A copy with the specs' known misspellings corrected and ``reg_records`` as an array."""
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if not isinstance(value, dict):
        return value
    fixed: dict[str, Any] = {}
    for key, item in value.items():
        name: str = _KEY_FIXES.get(str(key), str(key))
        if name in fixed and name != key:
            continue  # both spellings sent: the correct one wins
        item = normalise(item)
        if name == "reg_records" and isinstance(item, dict):
            item = [item]
        fixed[name] = item
    return fixed


def parse_envelope(body: bytes) -> Envelope:
    """The envelope of a request body; :class:`EnvelopeError` (``err.request.bad``) if none."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EnvelopeError("err.request.bad", f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise EnvelopeError("err.request.bad", "the body must be a JSON object")
    header, message = document.get("header"), document.get("message")
    if not isinstance(header, dict):
        raise EnvelopeError("err.request.bad", "the envelope needs a header object")
    if message is None:
        raise EnvelopeError("err.request.bad", "the envelope needs a message")
    signature = document.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise EnvelopeError("err.signature.invalid", "signature must be a string")
    envelope = Envelope(signature=signature or None, raw_header=header, raw_message=message)
    envelope.header = _normalise_header(header)
    envelope.message = normalise(message)
    sender_id = envelope.header.get("sender_id")
    if not isinstance(sender_id, str) or not sender_id:
        raise EnvelopeError("err.sender_id.invalid", "header.sender_id is required")
    message_id = envelope.header.get("message_id")
    if not isinstance(message_id, str | int) or not 0 < len(str(message_id)) <= 200:
        raise EnvelopeError("err.request.bad", "header.message_id: 1 to 200 characters")
    envelope.header["message_id"] = str(message_id)
    return envelope


def _normalise_header(header: dict[str, Any]) -> dict[str, Any]:
    fixed: dict[str, Any] = normalise(header)
    action = fixed.get("action")
    if isinstance(action, str):
        fixed["action"] = _ACTION_FIXES.get(action, action)
    total = fixed.get("total_count")
    # The spec's own samples send "total_count": "1".
    if isinstance(total, str) and total.strip().isdigit():
        fixed["total_count"] = int(total.strip())
    return fixed


def check_version(header: dict[str, Any]) -> HeaderRejection | None:
    """``rjct.version.invalid`` for a malformed version; ``err.version.not_supported`` (raised)
    for a well-formed one this registry does not speak."""
    version = header.get("version", SUPPORTED_VERSION)
    if not isinstance(version, str) or not _SEMVER.match(version):
        return HeaderRejection("rjct.version.invalid", "header.version must look like 1.0.0")
    if version.split(".")[0] != SUPPORTED_VERSION.split(".")[0]:
        raise EnvelopeError(
            "err.version.not_supported",
            f"message version {version} is not supported; this registry speaks {SUPPORTED_VERSION}",
        )
    return None


def check_header(
    header: dict[str, Any],
    *,
    action: str,
    item_count: int | None,
    max_items: int,
    ts_skew: timedelta,
    now: datetime | None = None,
) -> HeaderRejection | None:
    """The header-level ``rjct.*`` a well-formed, authentic message can still earn."""
    rejection = check_version(header)
    if rejection is not None:
        return rejection
    moment = now or datetime.now(UTC)
    sent = parse_timestamp(header.get("message_ts"))
    if sent is None:
        return HeaderRejection(
            "rjct.message_ts.invalid", "header.message_ts must be a date-time with an offset"
        )
    if sent > moment + ts_skew:
        return HeaderRejection("rjct.message_ts.invalid", "header.message_ts is in the future")
    sent_action = header.get("action")
    if sent_action in _UNSERVED_ACTIONS:
        return HeaderRejection(
            "rjct.action.not_supported",
            f"this registry does not serve {sent_action!r}; here the action is {action!r}",
        )
    if sent_action != action:
        return HeaderRejection(
            "rjct.action.invalid", f"header.action must be {action!r} on this endpoint"
        )
    total = header.get("total_count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return HeaderRejection(
            "rjct.total_count.invalid", "header.total_count must be a non-negative integer"
        )
    if total > max_items:
        return HeaderRejection(
            "rjct.total_count.limit_exceeded",
            f"at most {max_items} requests per message (header.total_count is {total})",
        )
    if item_count is not None and total != item_count:
        return HeaderRejection(
            "rjct.total_count.invalid",
            f"header.total_count is {total} but the message holds {item_count} requests",
        )
    return None


def too_many_rejected(items: list[dict[str, Any]], *, limit: int) -> HeaderRejection | None:
    """``rjct.errors.too_many`` when more than ``limit`` items were rejected: the answer's
    header says so at once, while each item keeps its own reason."""
    rejected = sum(1 for item in items if item.get("status") == "rjct")
    if rejected <= limit:
        return None
    return HeaderRejection(
        "rjct.errors.too_many",
        f"{rejected} of the {len(items)} requests were rejected (more than {limit}); "
        "each one carries its reason",
    )


def rejection_fields(rejection: HeaderRejection) -> dict[str, Any]:
    """The header fields that carry a header-level rejection."""
    return {
        "status": "rjct",
        "status_reason_code": rejection.code,
        "status_reason_message": rejection.message[:999],
    }


def ack(correlation_id: str) -> dict[str, Any]:
    return {
        "message": {"ack_status": "ACK", "timestamp": now_iso(), "correlation_id": correlation_id}
    }


def err(code: str, message: str, correlation_id: str | None = None) -> dict[str, Any]:
    return {
        "message": {
            "ack_status": "ERR",
            "timestamp": now_iso(),
            "correlation_id": correlation_id or str(uuid.uuid4()),
            "error": {"code": code, "message": message[:999]},
        }
    }


def callback_header(
    *,
    action: str,
    registry_id: str,
    receiver_id: str,
    total_count: int,
    completed_count: int,
    rejection: HeaderRejection | None = None,
    status: str = "succ",
) -> dict[str, Any]:
    """A ``MsgCallbackHeader`` from the registry (answer of a sync call or a callback)."""
    header: dict[str, Any] = {
        "version": SUPPORTED_VERSION,
        "message_id": str(uuid.uuid4()),
        "message_ts": now_iso(),
        "action": action,
        "status": "rjct" if rejection else status,
        "total_count": total_count,
        "completed_count": completed_count,
        "sender_id": registry_id,
        "receiver_id": receiver_id,
        "is_msg_encrypted": False,
    }
    if rejection is not None:
        header.update(rejection_fields(rejection))
    return header


def item_purpose(criteria: Any, *, default: str) -> str:
    """The purpose to audit a read under: the item's ``authorize`` or ``consent`` purpose."""
    if isinstance(criteria, dict):
        for key in ("authorize", "consent"):
            grant = criteria.get(key)
            purpose = grant.get("purpose") if isinstance(grant, dict) else None
            if isinstance(purpose, dict):
                parts = [str(purpose[name]) for name in ("code", "text") if purpose.get(name)]
                if parts:
                    return f"SPDCI {key}: {' - '.join(parts)}"[:200]
            elif isinstance(purpose, str) and purpose.strip():
                return f"SPDCI {key}: {purpose.strip()}"[:200]
    return default
