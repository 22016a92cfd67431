"""The ticket e-mail: what it says, its QR picture and calendar file, read back as a mail client
and a calendar would read them."""

from __future__ import annotations

import email
import struct
import zlib
from datetime import UTC, timedelta
from email import policy

import icalendar
import pytest
from django.utils import timezone

from tickets.codes import qr_payload_for
from tickets.mail import QR_PNG_SCALE, ticket_mail_message
from tickets.rendering import qr_code
from tools.testing import door_open_times

# Commas, semicolons, a backslash and a line break must be escaped in the calendar file; the
# long non-ASCII title must be folded at 75 octets without splitting a character.
TITLE = "Kuliah Umum: Kota, Data; dan \\ Manusia — édition spéciale ünd ñ, dengan judul yang sangat panjang"
VENUE = "Aula Gedung E, Lantai 2\nPintu timur"


@pytest.fixture
def ticket(make_ticket, make_user, make_event):
    user = make_user()
    user.full_name = "Siti Rahma"
    user.save()
    event = make_event(title=TITLE, venue=VENUE, speaker="Rocky Gerung", **door_open_times())
    return make_ticket(user=user, event=event)


def _read(message) -> email.message.EmailMessage:
    """The message as a mail client gets it: bytes parsed back."""
    return email.message_from_bytes(message.message().as_bytes(), policy=policy.default)


def _tree(part) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [_tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def _png_modules(data: bytes, scale: int) -> list[list[bool]]:
    """The dark/light modules of a 1-bit greyscale PNG drawn at ``scale`` pixels per module."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunks.setdefault(kind, b"")
        chunks[kind] += data[position + 8 : position + 8 + length]
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (1, 0), "a black-and-white picture"
    raw, stride = zlib.decompress(chunks[b"IDAT"]), (width + 7) // 8
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):  # undo the row filter (RFC 2083 6.3; one byte per "pixel" here)
            left, up, corner = (line[i - 1] if i else 0), previous[i], (previous[i - 1] if i else 0)
            guess = left + up - corner
            paeth = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))[2]
            line[i] = (line[i] + (0, left, up, (left + up) // 2, paeth)[kind]) & 0xFF
        previous = bytes(line)
        rows.append([not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    centre = scale // 2
    return [[rows[y][x] for x in range(centre, width, scale)] for y in range(centre, height, scale)]


@pytest.mark.django_db
def test_the_mail_carries_the_code_the_time_the_place_and_the_qr_as_a_picture(ticket):
    mail = _read(ticket_mail_message(ticket))
    assert mail["To"] == ticket.user.email
    assert mail["Subject"].strip() == f"Tiket Anda: {TITLE}"  # Django folds a long subject after "Subject:"
    assert _tree(mail) == (
        "multipart/mixed",
        [
            ("multipart/related", [("multipart/alternative", ["text/plain", "text/html"]), "image/png"]),
            "text/calendar",
        ],
    )
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    code = f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}"
    starts = timezone.localtime(ticket.event.starts_at)
    for body in (text, html):
        assert code in body
        assert "Siti Rahma" in body and ticket.user.nim in body
        assert f"{starts:%H:%M} WIB" in body
    assert f"Kode tukar: {code}" in text  # Indonesian by default
    assert "Aula Gedung E, Lantai 2" in text
    assert f"/tickets/{ticket.id}/" in text and f"/tickets/{ticket.id}/" in html

    # The picture is inside the message, referenced by its Content-ID: no remote image to block.
    image = next(part for part in mail.walk() if part.get_content_type() == "image/png")
    content_id = image["Content-ID"].strip("<>")
    assert f'src="cid:{content_id}"' in html
    assert image.get_content_disposition() == "inline"
    assert "http" not in html.split("<img", 1)[1].split(">", 1)[0]
    # ...and it is this ticket's QR code, module for module: the signed payload the door reads.
    expected = [[bool(m) for m in row] for row in qr_code(qr_payload_for(ticket.id)).matrix_iter(border=4)]
    assert _png_modules(image.get_content(), QR_PNG_SCALE) == expected


@pytest.mark.django_db
def test_the_calendar_file_parses_with_the_events_time_place_and_escaped_text(ticket):
    mail = _read(ticket_mail_message(ticket))
    part = next(part for part in mail.walk() if part.get_content_type() == "text/calendar")
    assert part.get_filename() == f"tiket-{ticket.event.slug}.ics"
    assert part.get_param("method") == "PUBLISH"
    raw = part.get_payload(decode=True)

    # RFC 5545: CRLF line ends, lines of at most 75 octets (folded with a leading space).
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")[:-1]
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines), "the long title is folded"
    for line in lines:
        line.decode()  # no character cut in half by the folding

    calendar = icalendar.Calendar.from_ical(raw)
    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    (entry,) = calendar.walk("VEVENT")
    assert entry.decoded("DTSTART") == ticket.event.starts_at.replace(microsecond=0)  # whole seconds in iCalendar
    assert entry.decoded("DTSTART").utcoffset() == timedelta(0)
    assert f"DTSTART:{ticket.event.starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode() in lines
    assert str(entry["SUMMARY"]) == TITLE
    assert str(entry["LOCATION"]) == VENUE
    assert str(entry["UID"]) == f"{ticket.id}@ticketwar"
    assert entry.decoded("DTSTAMP") <= timezone.now()
    assert ticket.redeem_code[:4] in str(entry["DESCRIPTION"])
    (alarm,) = entry.walk("VALARM")
    assert alarm.decoded("TRIGGER") == -timedelta(hours=1)


@pytest.mark.django_db
def test_the_mail_speaks_english_on_request(ticket):
    mail = _read(ticket_mail_message(ticket, language="en"))
    assert mail["Subject"].strip() == f"Your ticket: {TITLE}"
    assert "Redeem code:" in mail.get_body(("plain",)).get_content()


@pytest.mark.django_db
def test_a_rotating_qr_events_mail_carries_the_code_and_the_identity_check_but_no_qr(make_ticket, make_event):
    ticket = make_ticket(event=make_event(rotating_qr=True, **door_open_times()))
    mail = _read(ticket_mail_message(ticket))
    assert not [part for part in mail.walk() if part.get_content_maintype() == "image"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "<img" not in html
    code = f"{ticket.redeem_code[:4]}-{ticket.redeem_code[4:]}"
    for body in (text, html):
        assert code in body
        assert "kartu mahasiswa" in body and "NIM" in body  # the door's identity check
        assert "30 detik" in body  # why the QR is not in the mail
    (entry,) = icalendar.Calendar.from_ical(
        next(p for p in mail.walk() if p.get_content_type() == "text/calendar").get_payload(decode=True)
    ).walk("VEVENT")
    assert "kartu mahasiswa" in str(entry["DESCRIPTION"])
