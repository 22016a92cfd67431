"""Celery interfaces of the tickets app: the ticket e-mail (default queue, never ``claims``)."""

from __future__ import annotations

from celery import shared_task

from queueing.selectors import claims_waiting

from .delivery import MAIL_TICKET_TASK, ticket_mail_sweep, ticket_mails_send

MAIL_SWEEP_TASK = "tickets.mail_sweep"


def _no_claim_waiting() -> bool:
    # The worker process that sends mail may be the one that decides claims (one worker serving
    # both queues, as `make run` and the deploy files start it): a slow mail server must not
    # hold its slots while students wait. Mail waits for the next sweep instead.
    return not claims_waiting()


@shared_task(name=MAIL_TICKET_TASK, ignore_result=True)
def mail_ticket(ticket_ids: list[str], language: str = "") -> dict[str, int]:
    """Send the e-mails of tickets just issued (sent after the issuing commit)."""
    return ticket_mails_send(ticket_ids=ticket_ids, language=language, may_go_on=_no_claim_waiting)


@shared_task(name=MAIL_SWEEP_TASK, ignore_result=True)
def mail_sweep() -> dict[str, int]:
    """Send the ticket e-mails that are due: never tried or failed and past their delay."""
    return ticket_mail_sweep(may_go_on=_no_claim_waiting)
