"""Rotating QR codes: a payload that changes every 30 s, so a screenshot stops working.

``payload = TWR.<ticket id hex>.<HMAC(ticket secret, window)[:16]>`` with ``window =
floor(unix time / 30)``. The ticket secret is ``HMAC(SECRET_KEY, ticket id)``: it never
leaves the server, so only the owner's ticket page (via ``/api/tickets/<id>/qr/``) can show
the current code. The door accepts the current and the previous window (a code shown just
before the turn still scans, and phone and server clocks may differ by a few seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime

from django.conf import settings

from .rendering import qr_svg_of

ROTATING_PREFIX = "TWR"
WINDOW_SECONDS = 30
_CODE_HEX = 16  # 64 bits: guessing the current code within 60 s is hopeless


def _ticket_secret(ticket_id: uuid.UUID) -> bytes:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, b"tickets.rotating:" + ticket_id.bytes, hashlib.sha256).digest()


def window_at(now: datetime) -> int:
    return int(now.timestamp()) // WINDOW_SECONDS


def rotating_code(ticket_id: uuid.UUID, window: int) -> str:
    return hmac.new(_ticket_secret(ticket_id), str(window).encode(), hashlib.sha256).hexdigest()[:_CODE_HEX]


def rotating_payload(ticket_id: uuid.UUID, now: datetime) -> str:
    return f"{ROTATING_PREFIX}.{ticket_id.hex}.{rotating_code(ticket_id, window_at(now))}"


def seconds_to_next_window(now: datetime) -> int:
    return WINDOW_SECONDS - int(now.timestamp()) % WINDOW_SECONDS


def ticket_id_from_rotating(payload: str, now: datetime) -> uuid.UUID | None:
    """The ticket id of a rotating payload valid now (current or previous window), else None."""
    if not isinstance(payload, str) or len(payload) > 200:
        return None
    parts = payload.strip().split(".")
    if len(parts) != 3 or parts[0] != ROTATING_PREFIX:
        return None
    try:
        ticket_id = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    window = window_at(now)
    for candidate in (window, window - 1):
        if hmac.compare_digest(rotating_code(ticket_id, candidate), parts[2].lower()):
            return ticket_id
    return None


def rotating_qr_svg(ticket_id: uuid.UUID, now: datetime) -> str:
    return qr_svg_of(rotating_payload(ticket_id, now))
