"""Celery interfaces of the tickets app: the attendance confirmations (default queue).

The ticket e-mail's tasks are in ``claims.tasks``: they wait while claims wait in the queue, an
app above this one.
"""

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

logger = logging.getLogger("ticketwar.tickets")


@shared_task(name="tickets.release_unconfirmed", ignore_result=True)
def release_unconfirmed() -> int:
    """Give back the tickets not confirmed by their request's deadline (their seats are offered)."""
    return confirmation_release_due()


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
            "link": site + reverse("tickets:confirm", args=[confirmation.ticket_id]),
        }
        messages.append((_("Confirm your seat: %(title)s") % {"title": request.event.title}, body, None, [user.email]))
    return send_mass_mail(messages, fail_silently=False)
