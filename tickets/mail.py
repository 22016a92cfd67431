"""What the ticket e-mail says: the redeem code, the QR as an image, time and place, a calendar file.

Built here, sent by ``tickets.delivery``. The message works offline and in mail clients that
block remote images: the QR is a PNG inside the message (``cid:``), not a link. Its parts::

    multipart/mixed
      multipart/related
        multipart/alternative
          text/plain
          text/html            <img src="cid:…">
        image/png              the QR code (inline; not for a rotating-QR event)
      text/calendar            tiket.ics (RFC 5545, times in UTC)

A rotating-QR event's message carries no QR: a picture of it would stop working within a
minute. It says to open the ticket page at the door, or to show the redeem code with the
student ID card (the door's identity check).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid

import icalendar
from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from common.timefmt import long_local

from .codes import qr_payload_for
from .models import Ticket
from .rendering import qr_code
from .selectors import format_redeem_code

# 8 pixels per module: a ~360-pixel image, shown at 240 CSS pixels (sharp on a phone's screen).
QR_PNG_SCALE = 8
QR_PNG_DISPLAY_PX = 240
# A reminder in the student's calendar this long before the start.
CALENDAR_REMINDER = timedelta(hours=1)


def ticket_url(ticket: Ticket) -> str:
    """The ticket page as a link that works from a mailbox (absolute when ``SITE_URL`` is set)."""
    return settings.SITE_URL + reverse("tickets:detail", args=[ticket.id])


def qr_png(ticket: Ticket) -> bytes:
    """The ticket's QR code (the same picture as the ticket page) as PNG bytes."""
    buffer = io.BytesIO()
    qr_code(qr_payload_for(ticket.id)).save(buffer, kind="png", scale=QR_PNG_SCALE, border=4)
    return buffer.getvalue()


def ticket_calendar(ticket: Ticket, *, now: datetime | None = None) -> bytes:
    """The event as an iCalendar file (RFC 5545) for the student's calendar.

    icalendar escapes the text, folds long lines at 75 octets and writes the UTC times with a
    ``Z``. The UID is the ticket's, so a second copy of the mail updates the same entry.
    Events have no end time: the entry marks the start (no ``DTEND``).
    """
    event = ticket.event
    now = now or timezone.now()
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//ticketwar//ticket//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    entry = icalendar.Event()
    entry.add("uid", f"{ticket.id}@ticketwar")
    entry.add("dtstamp", now.astimezone(UTC))
    entry.add("dtstart", event.starts_at.astimezone(UTC))
    entry.add("summary", event.title)
    entry.add("location", event.venue)
    entry.add("description", _calendar_description(ticket))
    link = ticket_url(ticket)
    if link.startswith(("https://", "http://")):
        entry.add("url", link)
    entry.add("status", "CONFIRMED")
    reminder = icalendar.Alarm()
    reminder.add("action", "DISPLAY")
    reminder.add("trigger", -CALENDAR_REMINDER)
    reminder.add("description", event.title)
    entry.add_component(reminder)
    calendar.add_component(entry)
    return calendar.to_ical()


def _calendar_description(ticket: Ticket) -> str:
    return render_to_string("tickets/email/ticket_calendar.txt", _context(ticket)).strip()


def _context(ticket: Ticket, qr_cid: str = "") -> dict:
    event = ticket.event
    return {
        "ticket": ticket,
        "event": event,
        "holder": ticket.user.full_name or ticket.user.get_username(),
        "nim": ticket.user.nim,
        "redeem": format_redeem_code(ticket.redeem_code),
        "when": long_local(event.starts_at),
        "link": ticket_url(ticket),
        "rotating": event.rotating_qr,
        "qr_cid": qr_cid,
        "qr_px": QR_PNG_DISPLAY_PX,
    }


def ticket_mail_message(ticket: Ticket, *, language: str | None = None) -> EmailMessage:
    """The ticket e-mail to its holder, in ``language`` (Indonesian when None or "").

    ``ticket`` needs its ``event`` and ``user`` loaded.
    """
    with translation.override(language or settings.LANGUAGE_CODE):
        rotating = ticket.event.rotating_qr
        qr_cid = "" if rotating else make_msgid(domain="ticketwar")[1:-1]  # without the <>
        context = _context(ticket, qr_cid)
        subject = " ".join(render_to_string("tickets/email/ticket_subject.txt", context).split())
        text = render_to_string("tickets/email/ticket_body.txt", context)
        html = render_to_string("tickets/email/ticket_body.html", context)
        calendar = ticket_calendar(ticket)

    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", "utf-8"))
    body.attach(MIMEText(html, "html", "utf-8"))
    related = MIMEMultipart("related")
    related.attach(body)
    if qr_cid:
        image = MIMEImage(qr_png(ticket), "png")
        image.add_header("Content-ID", f"<{qr_cid}>")
        image.add_header("Content-Disposition", "inline", filename="qr-tiket.png")
        related.attach(image)
    invite = MIMEText(calendar.decode(), "calendar", "utf-8")
    invite.set_param("method", "PUBLISH")
    invite.add_header("Content-Disposition", "attachment", filename=f"tiket-{ticket.event.slug}.ics")

    # No body of its own: Django then sends the parts above as the whole message (mixed).
    message = EmailMessage(subject=subject, body="", to=[ticket.user.email])
    message.attach(related)
    message.attach(invite)
    return message
