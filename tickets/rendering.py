"""Ticket images rendered on the server as inline SVG (no image files, no JavaScript).

The QR code carries the signed payload (``codes.qr_payload_for``); the Code 128 barcode
carries the redeem code for hand-held laser scanners, which read 1D codes only.
"""

from __future__ import annotations

import functools
import re
import uuid

import barcode
import segno
from barcode.writer import SVGWriter

from .codes import qr_payload_for

# Error correction "M" (15%) survives a cracked phone screen or a crumpled print-out while
# keeping the modules large enough for a cheap phone camera at arm's length.
QR_ERROR_LEVEL = "m"
# A fixed data mask. Left to choose, segno scores all eight masks on every render: 3.6 ms of CPU,
# most of a ticket page, paid by 500 winners opening their tickets in the same seconds. Our
# payloads (a uuid and an HMAC) look random, so the eight masks score alike (segno's own choice
# spreads over seven of them), and scanners read any mask: the camera test scans this picture.
QR_MASK = 2


def qr_code(payload: str) -> segno.QRCode:
    """The QR code of ``payload`` as every ticket shows it."""
    return segno.make(payload, error=QR_ERROR_LEVEL, micro=False, mask=QR_MASK)


@functools.lru_cache(maxsize=1024)
def qr_svg(ticket_id: uuid.UUID) -> str:
    """The ticket's QR code as an ``<svg>`` element sized by CSS (it has a viewBox only).

    Cached per process: the signed payload of a ticket never changes (see ``codes``).
    """
    qr = qr_code(qr_payload_for(ticket_id))
    return qr.svg_inline(
        scale=1, border=4, omitsize=True, svgclass="ticket-qr", lineclass=None, dark="#000", light="#fff"
    )


@functools.lru_cache(maxsize=1024)
def barcode_svg(redeem_code: str) -> str:
    """A Code 128 barcode of ``redeem_code`` as an ``<svg>`` element, rendered in memory."""
    code = barcode.get("code128", redeem_code, writer=SVGWriter())
    # 0.4 mm bars and a 15 mm height: wide enough for a laser scanner from a phone screen.
    raw = code.render({"module_width": 0.4, "module_height": 15, "quiet_zone": 4, "write_text": False}).decode()
    # Inline SVG needs neither the XML declaration, the DOCTYPE nor the generator comment.
    svg = raw[raw.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    return svg.replace("<svg ", '<svg class="ticket-barcode" role="img" aria-hidden="true" ', 1)
