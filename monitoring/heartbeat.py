"""Worker heartbeat: a Celery worker writes a row every few seconds while it lives.

Kept in PostgreSQL so ``/healthz`` can tell "worker dead" from "Redis dead".
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger("monitoring.heartbeat")

HEARTBEAT_INTERVAL_SECONDS = 5
_stop = threading.Event()


def _beat_forever(hostname: str, queues: str) -> None:
    # ticketwar.celery imports this module before Django is set up: models load once the worker runs.
    from django.db import close_old_connections
    from django.utils import timezone

    from monitoring.models import WorkerHeartbeat

    while not _stop.is_set():
        try:
            WorkerHeartbeat.objects.update_or_create(
                hostname=hostname, defaults={"seen_at": timezone.now(), "queues": queues[:200]}
            )
        except Exception:  # database away: try again next beat, never kill the worker
            logger.warning("worker heartbeat not written", exc_info=True)
        finally:
            close_old_connections()
        _stop.wait(HEARTBEAT_INTERVAL_SECONDS)


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", "worker")
    queues = ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values())) if sender else ""
    _stop.clear()
    threading.Thread(target=_beat_forever, args=(hostname, queues), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender=None, **kwargs) -> None:
    _stop.set()
    try:
        from monitoring.models import WorkerHeartbeat  # see _beat_forever

        WorkerHeartbeat.objects.filter(hostname=getattr(sender, "hostname", "worker")).delete()
    except Exception:
        logger.warning("worker heartbeat not removed", exc_info=True)
