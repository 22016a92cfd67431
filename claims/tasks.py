"""Celery interfaces that join the apps of a claim: tiny, id-free.

- ``queueing.process_queue`` drains the queue batch after batch (``queueing.processing``); after
  each batch the students refused as sold out go on the waiting list
  (``claims.services.claims_refused_join_the_list``), before the pushes tell their pages.
- The ticket e-mail (``tickets.delivery``) waits while claims wait: the worker that sends mail may
  be the one that decides claims, and a slow mail server must not hold its slots.

Named as the apps that send them name them (the beat, the claim's kick, the issuing): the drain
goes to the ``claims`` queue, the mail to ``default``. Every task may run twice at once (two
beats by mistake, a redelivered message): the tables and their locks make that harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from common import redis as redis_lib
from queueing.models import LIVE_STATUSES, QueueEntry
from queueing.processing import queue_drain
from queueing.push import push_progress
from queueing.selectors import claims_waiting
from queueing.services import KICK_KEY, PROCESS_QUEUE_TASK
from tickets.delivery import MAIL_TICKET_TASK, ticket_mail_sweep, ticket_mails_send

from .services import claims_refused_join_the_list

logger = logging.getLogger("ticketwar.claims")

MAIL_SWEEP_TASK = "tickets.mail_sweep"


@shared_task(name=PROCESS_QUEUE_TASK, ignore_result=True)
def process_queue() -> int:
    """Drain the queue batch after batch; hand over to a fresh task when the budget runs out."""
    try:
        # Cleared before the first scan: a claim committed after this sends a new kick, one
        # committed before is seen by the scan below.
        redis_lib.broker_client().delete(KICK_KEY)
    except Exception:
        logger.info("kick key not cleared", exc_info=True)
    decided, more, next_retry = queue_drain(after_batch=claims_refused_join_the_list)
    if more:
        process_queue.apply_async(retry=False)
    elif next_retry is not None:
        delay = max(0.0, (next_retry - timezone.now()).total_seconds())
        process_queue.apply_async(countdown=delay, retry=False, expires=delay + 30)
    waiting = set(QueueEntry.objects.filter(status__in=LIVE_STATUSES).values_list("event_id", flat=True).distinct())
    if waiting:
        push_progress(waiting)
    return decided


def _no_claim_waiting() -> bool:
    return not claims_waiting()


@shared_task(name=MAIL_TICKET_TASK, ignore_result=True)
def mail_ticket(ticket_ids: list[str], language: str = "") -> dict[str, int]:
    """Send the e-mails of tickets just issued (sent after the issuing commit)."""
    return ticket_mails_send(ticket_ids=ticket_ids, language=language, may_go_on=_no_claim_waiting)


@shared_task(name=MAIL_SWEEP_TASK, ignore_result=True)
def mail_sweep() -> dict[str, int]:
    """Send the ticket e-mails that are due: never tried or failed and past their delay."""
    return ticket_mail_sweep(may_go_on=_no_claim_waiting)
