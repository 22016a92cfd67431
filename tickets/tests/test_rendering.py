"""The ticket's QR and Code 128 SVGs carry exactly the codes the door expects.

No image decoder is installed, so both images are decoded from their SVG geometry: the QR
path is turned back into a module matrix and compared with segno's encoding of the payload;
the barcode's bars are read back into Code 128 symbols, checksum included.
"""

from __future__ import annotations

import re
import uuid

import pytest
import segno
from barcode.charsets import code128

from tickets.codes import new_redeem_code, qr_payload_for, ticket_id_from_qr
from tickets.rendering import QR_ERROR_LEVEL, QR_MASK, barcode_svg, qr_svg


def qr_matrix_from_svg(svg: str) -> list[list[bool]]:
    """Rebuild the dark modules from segno's path (``M x y`` absolute, ``m dx dy``, ``h n``)."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    # The first path is the white background; the dark modules are the stroked path.
    assert '<path fill="#fff"' in svg, "the QR needs a light background to scan on dark screens"
    path = re.search(r'<path stroke="#000" d="([^"]+)"', svg).group(1)
    matrix = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, args in re.findall(r"([MmHh])([^MmHh]*)", path):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            row = int(y)  # strokes run through the middle of a row (y + 0.5)
            for col in range(int(x), int(x + numbers[0])):
                matrix[row][col] = True
            x += numbers[0]
        else:
            pytest.fail(f"unexpected path command {command}")
    return matrix


@pytest.mark.parametrize("ticket_id", [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()])
def test_qr_svg_encodes_the_signed_payload(ticket_id):
    svg = qr_svg(ticket_id)
    payload = qr_payload_for(ticket_id)
    expected = segno.make(payload, error=QR_ERROR_LEVEL, micro=False, mask=QR_MASK)
    expected_matrix = [[bool(m) for m in row] for row in expected.matrix_iter(border=4)]
    assert qr_matrix_from_svg(svg) == expected_matrix
    # The payload segno encoded is the one the door verifies back to this ticket.
    assert ticket_id_from_qr(payload) == ticket_id
    # A different ticket gives a different picture.
    assert qr_matrix_from_svg(qr_svg(uuid.uuid4())) != expected_matrix


def decode_code128_svg(svg: str) -> str:
    bars = [(float(x), float(w)) for x, w in re.findall(r'<rect x="([\d.]+)mm" y="[\d.]+mm" width="([\d.]+)mm"', svg)]
    module = min(width for _, width in bars)
    start = bars[0][0]
    end = round((bars[-1][0] + bars[-1][1] - start) / module)
    modules = ["0"] * end
    for x, width in bars:
        first = round((x - start) / module)
        for i in range(first, first + round(width / module)):
            modules[i] = "1"
    bits = "".join(modules)
    assert bits.endswith(code128.STOP + "11"), "missing stop pattern"
    symbols = [bits[i : i + 11] for i in range(0, len(bits) - 13, 11)]
    values = [code128.CODES.index(symbol) for symbol in symbols]
    start_code, *data, checksum = values
    assert checksum == (start_code + sum(i * v for i, v in enumerate(data, 1))) % 103
    # Code sets: A and B map values to characters, C to digit pairs; 99/100/101 switch sets.
    tables = {name: {v: c for c, v in getattr(code128, name).items()} for name in ("A", "B")}
    charset = {v: k for k, v in code128.START_CODES.items()}[start_code]
    switches = {"A": {99: "C", 100: "B"}, "B": {99: "C", 101: "A"}, "C": {100: "B", 101: "A"}}
    text = []
    for value in data:
        if value in switches[charset]:
            charset = switches[charset][value]
        elif charset == "C":
            text.append(f"{value:02d}")
        else:
            text.append(tables[charset][value])
    return "".join(text)


@pytest.mark.parametrize("redeem_code", ["ACDEFGHJ", "34679XYW", "X3467999", *[new_redeem_code() for _ in range(5)]])
def test_barcode_svg_decodes_to_the_redeem_code(redeem_code):
    svg = barcode_svg(redeem_code)
    assert svg.startswith("<svg ") and "<?xml" not in svg and "<!--" not in svg
    assert decode_code128_svg(svg) == redeem_code


@pytest.mark.parametrize("redeem_code", ["ACDEFGHJ", new_redeem_code()])
def test_barcode_bars_are_the_ones_python_barcode_draws(redeem_code):
    """Our string-built SVG has exactly the bars of the library's own (DOM-built) SVG writer."""
    import barcode
    from barcode.writer import SVGWriter

    reference = barcode.get("code128", redeem_code, writer=SVGWriter()).render(
        {"module_width": 0.4, "module_height": 15, "quiet_zone": 4, "write_text": False}
    )
    pattern = r'<rect x="[\d.]+mm" y="[\d.]+mm" width="[\d.]+mm" height="[\d.]+mm"'
    assert re.findall(pattern, barcode_svg(redeem_code)) == re.findall(pattern, reference.decode())
    size = re.search(r'<svg [^>]*(width="[\d.]+mm" height="[\d.]+mm")', reference.decode()).group(1)
    assert size in barcode_svg(redeem_code)
