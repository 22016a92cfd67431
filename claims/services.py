"""A student's claim, end to end: the policy's answer carried out by the queue and the waiting list.

- ``claim_submit`` answers a claim (the claim API and the no-JavaScript form): the claim policy
  (``tickets.policy.claim_verdict``) says what it becomes, in its order of refusals; the queue's
  one statement puts it in (``queueing.services.queue_enqueue``); a student refused as sold out
  goes on the waiting list (``waitlist.services.waitlist_join``).
- ``claims_refused_join_the_list`` does the same for the claims the worker refuses as sold out,
  after each batch (``claims.tasks.process_queue``).

Here, above both the queue and the waiting list, because a claim needs both; neither imports
the other's services for it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone, translation

from events.cache import cached_event, cached_remaining
from events.models import Event
from queueing.deciding import BatchResult, drop_broken_connection
from queueing.models import QueueEntry
from queueing.processing import queue_process_batch
from queueing.services import queue_enqueue
from tickets.exceptions import EventUnavailable, NotEligible, SoldOut
from tickets.policy import Standing, claim_verdict
from waitlist.selectors import waitlist_place
from waitlist.services import waitlist_join
from waitlist.standing import standing_of

logger = logging.getLogger("ticketwar.claims")


def claim_event(slug: str) -> Event:
    """The event row for the claim's answer, from the cache (a burst must not read it 1000 times).

    Edits, publishing and cancelling invalidate the cached row; the seat count comes from its
    own entry, rewritten after every seat change. Staleness only shifts an early refusal: the
    worker decides with the row itself. A shuffled opening is read from the table: its draw
    (which turns pre-queue claims into ranked ones) is not a cache-invalidating edit.
    """
    event = cached_event(slug)
    if event is None:
        raise EventUnavailable()
    if event.is_shuffled:
        fresh = Event.objects.filter(pk=event.pk).first()
        if fresh is None:
            raise EventUnavailable()
        return fresh
    event.remaining = cached_remaining(event.id)
    return event


def claim_submit(*, user, event_slug: str, now: datetime | None = None) -> tuple[QueueEntry, bool]:
    """``user``'s claim of the event: ``(entry, created)``, or the policy's refusal raised.

    The database is read only as far as the answer needs it: nothing for a student who may not
    claim at all; while the claim window is open (or a shuffled event's pre-queue takes claims),
    the queue's one statement, which finds a ticket the student holds or a claim of theirs in the
    queue as it inserts; otherwise, or when that statement put nothing in, the student's standing
    (``waitlist.standing.standing_of``, one query). So a student with a claim in the queue gets
    that same entry back (``created`` False), a ticket holder the 409 with their ticket. A student
    refused as sold out goes on the waiting list unless they opted out, and the refusal carries
    their place (``waitlist``). The claim's language (the active one, the request's) goes with the
    entry, for its ticket e-mail.
    """
    now = now or timezone.now()
    event = claim_event(event_slug)
    # What can be answered before reading anything: the student, and whether the claim would queue.
    verdict = claim_verdict(Standing(user), event=event, now=now)
    if isinstance(verdict.refusal, NotEligible):
        raise verdict.refusal
    for _attempt in range(3):
        if verdict.queues:
            language = translation.get_language() or ""
            entry = queue_enqueue(user_id=user.pk, event=event, prequeue=verdict.prequeue, now=now, language=language)
            if entry is not None:
                return entry, True
        verdict = claim_verdict(standing_of(user=user, event=event), event=event, now=now)
        if verdict.entry is not None:
            return verdict.entry, False
        if verdict.refusal is not None:
            if verdict.joins_waitlist:
                place = waitlist_join(students=[(event.pk, user.pk, None)])[(event.pk, user.pk)]
                if place.status != place.Status.LEFT:
                    verdict.refusal.extra["waitlist"] = waitlist_place(place)
            raise verdict.refusal
        # Nothing held and nothing queued any more (given back, decided meanwhile): claim afresh.
    raise RuntimeError("could not enqueue the claim after 3 attempts")


def claims_refused_join_the_list(result: BatchResult) -> None:
    """The students a batch refused as sold out go on their events' waiting lists, in queue order
    (opt-outs stay out). Never raises: the refusals are committed, and a lost enrolment must not
    stop the drain (it is logged)."""
    refused = [d.claimed for d in result.decisions if d.status == QueueEntry.Status.FAILED and d.reason == SoldOut.code]
    if not refused:
        return
    refused.sort(key=lambda c: (c.sort_key or 0, c.id))
    try:
        waitlist_join(students=[(c.event_id, c.user_id, c.public_id) for c in refused])
    except Exception:
        logger.error("sold-out claims not put on the waiting list: %s", [c.id for c in refused], exc_info=True)
        drop_broken_connection()


def claims_decide_batch(*, limit: int | None = None, now: datetime | None = None) -> BatchResult:
    """One batch decided as the drain decides it: the queue's batch, then its sold-out students
    on the waiting list."""
    result = queue_process_batch(limit=limit, now=now)
    claims_refused_join_the_list(result)
    return result
