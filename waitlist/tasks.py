"""Celery interfaces of the waiting list: tiny, each calling services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mass_mail
from django.urls import reverse
from django.utils.translation import gettext as _

from common.timefmt import long_local

from .confirmations import MAIL_CONFIRMATION_REQUEST_TASK, confirmation_release_due
from .models import ConfirmationRequest
from .services import waitlist_expire_offers, waitlist_fill_all

logger = logging.getLogger("ticketwar.waitlist")


@shared_task(name="waitlist.tick", ignore_result=True)
def tick() -> dict:
    """Release unconfirmed tickets past their deadline, close expired offers, fill free seats."""
    return {
        "released": confirmation_release_due(),
        "expired": waitlist_expire_offers(),
        "offered": waitlist_fill_all(),
    }


@shared_task(name=MAIL_CONFIRMATION_REQUEST_TASK, ignore_result=True)
def mail_confirmation_request(request_id: int) -> int:
    """E-mail every holder asked to confirm attendance (one message each)."""
    request = ConfirmationRequest.objects.select_related("event").filter(pk=request_id).first()
    if request is None:
        return 0
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    messages = []
    for confirmation in request.confirmations.select_related("ticket__user"):
        user = confirmation.ticket.user
        if not user.email:
            continue
        body = _(
            "Please confirm that you will attend %(title)s before %(deadline)s, or your seat will go to "
            "a student on the waiting list: %(link)s"
        ) % {
            "title": request.event.title,
            "deadline": long_local(request.deadline),
            "link": site + reverse("waitlist:confirm", args=[confirmation.ticket_id]),
        }
        messages.append((_("Confirm your seat: %(title)s") % {"title": request.event.title}, body, None, [user.email]))
    return send_mass_mail(messages, fail_silently=False)
