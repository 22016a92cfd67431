"""Telling a student about a seat offer: a websocket push to their waiting page, and an e-mail."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from queueing.push import entry_group

from .models import WaitlistEntry

logger = logging.getLogger("ticketwar.waitlist")


def offer_message(entry: WaitlistEntry) -> dict:
    return {
        "id": str(entry.public_id),
        "status": entry.status,
        "offer_expires_at": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None,
        "url": reverse("waitlist:offer", args=[entry.public_id]),
        "message": _("A seat is free for you! Claim it before it passes to the next student."),
    }


def notify_offer(entry_id: int) -> None:
    entry = WaitlistEntry.objects.select_related("event", "user").filter(pk=entry_id).first()
    if entry is None or entry.status != WaitlistEntry.Status.OFFERED:
        return
    message = offer_message(entry)
    if entry.queue_public_id:
        _push(entry, message)
    if entry.user.email:
        link = (
            f"{settings.SITE_URL.rstrip('/')}{message['url']}" if getattr(settings, "SITE_URL", "") else message["url"]
        )
        send_mail(
            _("A seat is free for you: %(title)s") % {"title": entry.event.title},
            ngettext(
                "A seat of %(title)s was given back and you are next on the waiting list.\n"
                "Claim it within %(minutes)s minute: %(link)s\n"
                "After that it passes to the next student.",
                "A seat of %(title)s was given back and you are next on the waiting list.\n"
                "Claim it within %(minutes)s minutes: %(link)s\n"
                "After that it passes to the next student.",
                settings.WAITLIST_OFFER_MINUTES,
            )
            % {"title": entry.event.title, "minutes": settings.WAITLIST_OFFER_MINUTES, "link": link},
            None,
            [entry.user.email],
            fail_silently=False,
        )


def _push(entry: WaitlistEntry, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            entry_group(entry.queue_public_id), {"type": "waitlist.offer", "offer": message}
        )
    except Exception:  # a hint only: the e-mail and the page's polling still reach the student
        logger.info("offer push failed", exc_info=True)
