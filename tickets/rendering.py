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


def qr_svg_of(payload: str) -> str:
    """``payload``'s QR code as an ``<svg>`` element sized by CSS (it has a viewBox only)."""
    return qr_code(payload).svg_inline(
        scale=1, border=4, omitsize=True, svgclass="ticket-qr", lineclass=None, dark="#000", light="#fff"
    )


@functools.lru_cache(maxsize=1024)
def qr_svg(ticket_id: uuid.UUID) -> str:
    """The ticket's QR code (its signed payload) as an ``<svg>`` element.

    Cached per process: the signed payload of a ticket never changes (see ``codes``).
    """
    return qr_svg_of(qr_payload_for(ticket_id))


# Code 128 geometry: 0.4 mm bars and a 15 mm height, wide enough for a laser scanner reading a
# phone screen; a 4 mm quiet zone on each side and a 1 mm margin above and below.
BAR_MM = 0.4
BAR_HEIGHT_MM = 15
QUIET_ZONE_MM = 4
MARGIN_MM = 1


@functools.lru_cache(maxsize=1024)
def barcode_svg(redeem_code: str) -> str:
    """A Code 128 barcode of ``redeem_code`` as an ``<svg>`` element.

    python-barcode encodes (character sets, checksum, stop pattern); the bars are drawn here,
    one ``<rect>`` per run of dark modules, because its SVG writer builds an XML DOM per
    barcode: a third of a ticket page's CPU when 500 winners open their tickets at once.
    """
    modules = barcode.get("code128", redeem_code).build()[0]
    bars = []
    for run in re.finditer(r"1+", modules):
        x = QUIET_ZONE_MM + run.start() * BAR_MM
        bars.append(
            f'<rect x="{x:.3f}mm" y="{MARGIN_MM:.3f}mm" width="{len(run.group()) * BAR_MM:.3f}mm" '
            f'height="{BAR_HEIGHT_MM:.3f}mm" fill="black"/>'
        )
    width = 2 * QUIET_ZONE_MM + len(modules) * BAR_MM
    height = BAR_HEIGHT_MM + 2 * MARGIN_MM
    return (
        f'<svg class="ticket-barcode" role="img" aria-hidden="true" version="1.1" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width:.3f}mm" height="{height:.3f}mm"><g><rect width="100%" height="100%" fill="white"/>'
        + "".join(bars)
        + "</g></svg>"
    )
