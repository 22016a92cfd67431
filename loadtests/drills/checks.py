"""The database truth after a drill: nothing lost, nothing doubled, every claim decided."""

from __future__ import annotations

import time

from loadtests.drills.common import dsn
from loadtests.report import percentile


def invariants(database_url: str, event_id: int) -> dict:
    """What must hold after any drill: nothing lost, nothing doubled."""
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        capacity, remaining = conn.execute(
            "SELECT capacity, remaining FROM events_event WHERE id = %s", [event_id]
        ).fetchone()
        tickets, holders = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM tickets_ticket WHERE event_id = %s AND status = 'active'",
            [event_id],
        ).fetchone()
        claimants = conn.execute(
            "SELECT count(DISTINCT user_id) FROM ticket_queue WHERE event_id = %s", [event_id]
        ).fetchone()[0]
        statuses = dict(
            conn.execute(
                "SELECT status || CASE WHEN reason <> '' THEN ':' || reason ELSE '' END, count(*) "
                "FROM ticket_queue WHERE event_id = %s GROUP BY 1 ORDER BY 1",
                [event_id],
            ).fetchall()
        )
        live = conn.execute(
            "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')",
            [event_id],
        ).fetchone()[0]
        completed_linked = conn.execute(
            "SELECT count(*) FROM ticket_queue q JOIN tickets_ticket t ON t.id = q.ticket_id "
            "WHERE q.event_id = %s AND q.status = 'completed' AND t.user_id = q.user_id AND t.status = 'active'",
            [event_id],
        ).fetchone()[0]
        max_attempts = conn.execute(
            "SELECT coalesce(max(attempts), 0) FROM ticket_queue WHERE event_id = %s", [event_id]
        ).fetchone()[0]
    expected = min(capacity, claimants)
    return {
        "capacity": capacity,
        "remaining": remaining,
        "claimants": claimants,
        "tickets": tickets,
        "holders": holders,
        "expected_tickets": expected,
        "queue": statuses,
        "live_entries": live,
        "completed_linked": completed_linked,
        "max_attempts": max_attempts,
        "ok": (
            tickets == expected
            and holders == tickets
            and remaining == capacity - tickets
            and live == 0
            and completed_linked == tickets
            and statuses.get("failed:error", 0) == 0
        ),
    }


def wait_queue_empty(database_url: str, event_id: int, timeout: float) -> float:
    """Seconds waited until no entry of the event is pending or processing (raises on timeout)."""
    import psycopg

    started = time.monotonic()
    while True:
        try:
            with psycopg.connect(dsn(database_url), autocommit=True, connect_timeout=3) as conn:
                live = conn.execute(
                    "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status IN ('pending', 'processing')",
                    [event_id],
                ).fetchone()[0]
        except psycopg.OperationalError:
            live = -1
        if live == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{live} entries still live after {timeout:.0f} s")
        time.sleep(0.5)


def accepted_claims(database_url: str, event_id: int, results: dict) -> dict:
    """Every claim the client saw accepted (200/202 with a queue id) must end decided in the table."""
    import psycopg

    accepted = {s["queue_id"]: s for s in results["students"] if s["queue_id"]}
    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT public_id::text, status, reason, extract(epoch FROM created_at), extract(epoch FROM processed_at) "
            "FROM ticket_queue WHERE event_id = %s",
            [event_id],
        ).fetchall()
    by_id = {row[0]: row for row in rows}
    missing = [qid for qid in accepted if qid not in by_id]
    undecided = [qid for qid in accepted if qid in by_id and by_id[qid][1] not in ("completed", "failed")]
    seen_by_client = sum(1 for s in accepted.values() if s["decision"])
    disagree = [
        qid
        for qid, s in accepted.items()
        if s["decision"] and qid in by_id and s["decision"]["status"] != by_id[qid][1]
    ]
    clicks = [click for s in results["students"] for click in s["clicks"]]
    return {
        "accepted": len(accepted),
        "missing_in_table": len(missing),
        "undecided": len(undecided),
        "decided_seen_by_client": seen_by_client,
        "client_and_table_disagree": len(disagree),
        "clicks": len(clicks),
        "click_statuses": _count(click[1] for click in clicks),
        "students_clicking_more_than_once": sum(1 for s in results["students"] if len(s["clicks"]) > 1),
        "rows": [(float(r[3]), float(r[4]) if r[4] is not None else None, r[1], r[2]) for r in rows],
    }


def _count(values) -> dict:
    out: dict = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def delays_by_arrival(rows: list[tuple], windows: dict[str, tuple[float, float]]) -> list[str]:
    """Claim-to-decision time of queued claims, grouped by when they arrived."""
    lines = [
        "| claims queued | entries | decided | p50 s | p95 s | max s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, (begin, end) in windows.items():
        chosen = [r for r in rows if begin <= r[0] < end]
        waits = [r[1] - r[0] for r in chosen if r[1] is not None]
        p50, p95 = percentile(waits, 50), percentile(waits, 95)
        lines.append(
            f"| {name} | {len(chosen)} | {len(waits)} | {'–' if p50 is None else f'{p50:.1f}'} "
            f"| {'–' if p95 is None else f'{p95:.1f}'} | {f'{max(waits):.1f}' if waits else '–'} |"
        )
    return lines


def invariants_table(figures: dict) -> list[str]:
    q = ", ".join(f"{k}: {v}" for k, v in figures["queue"].items())
    return [
        "| capacity | distinct claimants | tickets | expected min(capacity, claimants) | one per student "
        "| remaining | entries still live | completed ↔ ticket | max attempts | queue outcomes | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {figures['capacity']} | {figures['claimants']} | {figures['tickets']} | {figures['expected_tickets']} "
        f"| {'yes' if figures['holders'] == figures['tickets'] else 'NO'} | {figures['remaining']} "
        f"| {figures['live_entries']} | {figures['completed_linked']} | {figures['max_attempts']} | {q} "
        f"| {'nothing lost or doubled' if figures['ok'] else '**BROKEN**'} |",
    ]


def count_rows(database_url: str, event_id: int, status: str) -> int:
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status = %s", [event_id, status]
        ).fetchone()[0]
