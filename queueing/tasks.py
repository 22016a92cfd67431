"""Celery interfaces of the claim queue: tiny, id-free, each calling one processing function.

Every task may run twice at once (two beats by mistake, a redelivered message): the table and
its SKIP LOCKED / lease checks make that harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from common import redis as redis_lib

from .models import LIVE_STATUSES, QueueEntry
from .processing import queue_cleanup, queue_drain, queue_reap
from .push import push_progress
from .services import KICK_KEY, PROCESS_QUEUE_TASK

logger = logging.getLogger("ticketwar.queueing")


@shared_task(name=PROCESS_QUEUE_TASK, ignore_result=True)
def process_queue() -> int:
    """Drain the queue batch after batch; hand over to a fresh task when the budget runs out."""
    try:
        # Cleared before the first scan: a claim committed after this sends a new kick, one
        # committed before is seen by the scan below.
        redis_lib.broker_client().delete(KICK_KEY)
    except Exception:
        logger.info("kick key not cleared", exc_info=True)
    decided, more, next_retry = queue_drain()
    if more:
        process_queue.apply_async(retry=False)
    elif next_retry is not None:
        delay = max(0.0, (next_retry - timezone.now()).total_seconds())
        process_queue.apply_async(countdown=delay, retry=False, expires=delay + 30)
    waiting = set(QueueEntry.objects.filter(status__in=LIVE_STATUSES).values_list("event_id", flat=True).distinct())
    if waiting:
        push_progress(waiting)
    return decided


@shared_task(name="queueing.reap_leases", ignore_result=True)
def reap_leases() -> dict:
    """Rows left in ``processing`` by a dead worker go back to the queue after the lease."""
    counts = queue_reap()
    if counts["pending"]:
        process_queue.apply_async(retry=False, expires=30)
    return counts


@shared_task(name="queueing.cleanup", ignore_result=True)
def cleanup() -> int:
    """Delete claims decided over an hour ago, folding them into ClaimStat first."""
    return queue_cleanup()
