"""Celery interfaces of the claim queue: tiny, id-free, each calling one processing function.

The drain itself (``queueing.process_queue``) is in ``claims.tasks``: after each batch the
students refused as sold out go on the waiting list, an app above the queue.

Every task may run twice at once (two beats by mistake, a redelivered message): the table and
its SKIP LOCKED / lease checks make that harmless.
"""

from __future__ import annotations

from celery import current_app, shared_task

from .processing import queue_cleanup, queue_reap
from .services import PROCESS_QUEUE_TASK


@shared_task(name="queueing.reap_leases", ignore_result=True)
def reap_leases() -> dict:
    """Rows left in ``processing`` by a dead worker go back to the queue after the lease."""
    counts = queue_reap()
    if counts["pending"]:
        current_app.signature(PROCESS_QUEUE_TASK).apply_async(retry=False, expires=30)
    return counts


@shared_task(name="queueing.cleanup", ignore_result=True)
def cleanup() -> int:
    """Delete claims decided over an hour ago, folding them into ClaimStat first."""
    return queue_cleanup()
