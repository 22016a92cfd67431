"""Exports of the request log, the error log, the claim log and the metric history.

Each kind yields plain dict rows in time order; views render them as CSV (text cells made safe
for spreadsheets, common/spreadsheet.py) or JSON Lines (as logged).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Q
from django.db.models.functions import TruncMinute

from common.spreadsheet import csv_safe
from queueing.models import ClaimStat, QueueEntry
from tickets.models import DoorScan

from .models import ErrorLog, MetricSample, RequestStat

FIELDS = {
    "requests": ["minute", "endpoint", "method", "count", "errors", "client_errors", "avg_ms", "max_ms",
                 "db_queries", "db_ms"],
    "errors": ["logged_at", "level", "logger", "exception_type", "message", "path", "process", "traceback"],
    "claims": ["queue_id", "user_id", "event", "status", "attempts", "reason", "created_at", "processed_at",
               "wait_seconds", "ticket_id"],
    "claimstats": ["minute", "event", "outcome", "count"],
    "metrics": ["taken_at", "active_users", "claims_per_minute", "claim_success_rate", "p95_ms", "error_rate",
                "cache_hit_ratio", "queue_depth", "queue_delay_seconds", "requests", "remaining"],
    # Every scan at a door (online, or synced from a phone that decided it offline), and per minute.
    "door": ["scanned_at", "recorded_at", "event", "device", "staff", "method", "offline", "result", "reason",
             "conflict", "ticket_id", "nim"],
    "doorstats": ["minute", "event", "device", "scans", "admitted", "offline", "conflicts"],
}  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def rows(kind: str, *, since: datetime, until: datetime) -> Iterator[dict]:
    if kind == "requests":
        qs = RequestStat.objects.filter(minute__gte=since, minute__lt=until).order_by("minute", "endpoint", "method")
        for r in qs.iterator(chunk_size=2000):
            yield {
                "minute": _iso(r.minute), "endpoint": r.endpoint, "method": r.method, "count": r.count,
                "errors": r.errors, "client_errors": r.client_errors,
                "avg_ms": round(r.total_ms / r.count, 2) if r.count else None, "max_ms": round(r.max_ms, 2),
                "db_queries": r.db_queries, "db_ms": round(r.db_ms, 2),
            }  # fmt: skip
    elif kind == "errors":
        qs = ErrorLog.objects.filter(logged_at__gte=since, logged_at__lt=until).order_by("logged_at", "id")
        for e in qs.iterator(chunk_size=500):
            yield {
                "logged_at": _iso(e.logged_at), "level": e.level, "logger": e.logger,
                "exception_type": e.exception_type, "message": e.message, "path": e.path, "process": e.process,
                "traceback": e.traceback,
            }  # fmt: skip
    elif kind == "claims":
        qs = (
            QueueEntry.objects.filter(created_at__gte=since, created_at__lt=until)
            .select_related("event")
            .order_by("created_at", "id")
        )
        for q in qs.iterator(chunk_size=2000):
            wait = (q.processed_at - q.created_at).total_seconds() if q.processed_at else None
            yield {
                "queue_id": str(q.public_id), "user_id": q.user_id, "event": q.event.slug, "status": q.status,
                "attempts": q.attempts, "reason": q.reason, "created_at": _iso(q.created_at),
                "processed_at": _iso(q.processed_at), "wait_seconds": round(wait, 3) if wait is not None else None,
                "ticket_id": str(q.ticket_id) if q.ticket_id else None,
            }  # fmt: skip
    elif kind == "claimstats":
        # Decided claims per minute, event and outcome: what the queue keeps after its hourly cleanup.

        qs = (
            ClaimStat.objects.filter(minute__gte=since, minute__lt=until)
            .select_related("event")
            .order_by("minute", "event__slug", "outcome")
        )
        for c in qs.iterator(chunk_size=2000):
            yield {"minute": _iso(c.minute), "event": c.event.slug, "outcome": c.outcome, "count": c.count}
    elif kind == "metrics":
        qs = MetricSample.objects.filter(taken_at__gte=since, taken_at__lt=until).order_by("taken_at")
        for s in qs.iterator(chunk_size=2000):
            yield {field: getattr(s, field) for field in FIELDS["metrics"]} | {"taken_at": _iso(s.taken_at)}
    elif kind in ("door", "doorstats"):
        yield from _door_rows(kind, since=since, until=until)
    else:
        raise ValueError(kind)


def _door_rows(kind: str, *, since: datetime, until: datetime) -> Iterator[dict]:
    scans = DoorScan.objects.filter(scanned_at__gte=since, scanned_at__lt=until)
    if kind == "door":
        qs = scans.select_related("event", "staff", "ticket__user").order_by("scanned_at", "id")
        for d in qs.iterator(chunk_size=2000):
            yield {
                "scanned_at": _iso(d.scanned_at), "recorded_at": _iso(d.recorded_at), "event": d.event.slug,
                "device": d.device_name, "staff": d.staff.get_username() if d.staff else None, "method": d.method,
                "offline": d.offline, "result": d.result, "reason": d.reason, "conflict": d.conflict,
                "ticket_id": str(d.ticket_id) if d.ticket_id else None,
                "nim": d.ticket.user.nim if d.ticket else None,
            }  # fmt: skip
        return
    per_minute = (
        scans.annotate(minute=TruncMinute("scanned_at"))
        .values("minute", "event__slug", "device_name")
        .annotate(
            scans=Count("id"),
            admitted=Count("id", filter=Q(result=DoorScan.Result.ADMITTED)),
            offline=Count("id", filter=Q(offline=True)),
            conflicts=Count("id", filter=Q(conflict=True)),
        )
        .order_by("minute", "event__slug", "device_name")
    )
    for r in per_minute.iterator(chunk_size=2000):
        yield {
            "minute": _iso(r["minute"]), "event": r["event__slug"], "device": r["device_name"], "scans": r["scans"],
            "admitted": r["admitted"], "offline": r["offline"], "conflicts": r["conflicts"],
        }  # fmt: skip


def as_jsonl(items: Iterator[dict]) -> Iterator[str]:
    for item in items:
        yield json.dumps(item, ensure_ascii=False, default=str) + "\n"


def as_csv(kind: str, items: Iterator[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS[kind], extrasaction="ignore")
    writer.writeheader()
    for item in items:
        if kind == "metrics":
            item = {**item, "remaining": json.dumps(item["remaining"], sort_keys=True)}
        # Logged messages, paths and tracebacks come from requests: never formulas in a spreadsheet.
        writer.writerow({key: csv_safe(value) if isinstance(value, str) else value for key, value in item.items()})
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
