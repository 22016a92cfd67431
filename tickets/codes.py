"""Ticket codes.

The QR payload is the ticket id signed with the SECRET_KEY, so a forged or altered code is
rejected without a database lookup. The redeem code is short and readable aloud.
"""

from __future__ import annotations

import secrets
import uuid

from django.core import signing

from .models import REDEEM_ALPHABET, REDEEM_LENGTH

QR_PREFIX = "TW1"
_signer = signing.Signer(salt="tickets.qr", sep=".")


def qr_payload_for(ticket_id: uuid.UUID) -> str:
    return f"{QR_PREFIX}.{_signer.sign(ticket_id.hex)}"


def ticket_id_from_qr(payload: str) -> uuid.UUID | None:
    """The ticket id inside a genuine QR payload, or None for anything forged or malformed."""
    if not isinstance(payload, str) or len(payload) > 200:
        return None
    prefix, _, signed = payload.strip().partition(".")
    if prefix != QR_PREFIX:
        return None
    try:
        return uuid.UUID(hex=_signer.unsign(signed))
    except (signing.BadSignature, ValueError):
        return None


def new_redeem_code() -> str:
    return "".join(secrets.choice(REDEEM_ALPHABET) for _ in range(REDEEM_LENGTH))


def normalize_redeem_code(raw: str) -> str | None:
    """Upper-cased, spaces and dashes removed; None when it cannot be a redeem code."""
    if not isinstance(raw, str):
        return None
    code = raw.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != REDEEM_LENGTH or any(ch not in REDEEM_ALPHABET for ch in code):
        return None
    return code
