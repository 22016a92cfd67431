"""Health of the parts the ticket war needs: database, Redis, Celery worker, claim queue.

Each check answers green, yellow or red with a short detail; ``/healthz`` is 503 when any
part is red. Thresholds (documented in docs/OPERATIONS.md):
- worker: green if a heartbeat is younger than WORKER_HEARTBEAT_STALE_SECONDS, else red;
- queue: oldest waiting claim < 5 s green, < 30 s yellow, else red (target: delay < 5 s).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.utils import timezone

from common import redis as redis_lib
from common.breaker import all_breakers
from monitoring.models import WorkerHeartbeat
from queueing.models import QueueEntry

GREEN, YELLOW, RED = "green", "yellow", "red"
_RANK = {GREEN: 0, YELLOW: 1, RED: 2}

QUEUE_YELLOW_SECONDS = 5
QUEUE_RED_SECONDS = 30


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": GREEN}
    except Exception as exc:  # any failure to reach PostgreSQL is "red", not a crash
        return {"status": RED, "detail": f"database unreachable: {type(exc).__name__}"}


def check_redis() -> dict:
    ok, detail = redis_lib.ping()
    breakers = {name: breaker.snapshot() for name, breaker in sorted(all_breakers().items())}
    # An open Redis breaker means recent calls failed: red even if this one PING got through.
    ok = ok and breakers.get("redis", {}).get("state") != "open"
    return {"status": GREEN if ok else RED, **({"detail": detail} if detail else {}), "breakers": breakers}


def check_worker() -> dict:
    try:
        latest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    except Exception:
        return {"status": RED, "detail": "cannot read worker heartbeats (database down)"}
    if latest is None:
        return {"status": RED, "detail": "no Celery worker has reported yet"}
    age = (timezone.now() - latest).total_seconds()
    if age > settings.WORKER_HEARTBEAT_STALE_SECONDS:
        return {"status": RED, "detail": f"last worker heartbeat {int(age)} s ago"}
    return {"status": GREEN, "age_seconds": round(age, 1)}


def check_queue() -> dict:
    try:
        oldest = (
            QueueEntry.objects.filter(status=QueueEntry.Status.PENDING, prequeue=False)
            .order_by("id")
            .values_list("created_at", flat=True)
            .first()
        )
    except Exception:
        return {"status": RED, "detail": "cannot read the queue (database down)"}
    if oldest is None:
        return {"status": GREEN, "oldest_pending_seconds": 0}
    age = max(0.0, (timezone.now() - oldest).total_seconds())
    status = GREEN if age < QUEUE_YELLOW_SECONDS else YELLOW if age < QUEUE_RED_SECONDS else RED
    return {"status": status, "oldest_pending_seconds": round(age, 1)}


CHECKS = {"database": check_database, "redis": check_redis, "worker": check_worker, "queue": check_queue}


def health_report() -> dict:
    checks = {name: check() for name, check in CHECKS.items()}
    overall = max((c["status"] for c in checks.values()), key=_RANK.__getitem__)
    return {"status": overall, "checks": checks, "time": timezone.now().isoformat()}
