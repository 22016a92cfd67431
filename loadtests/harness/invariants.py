"""The database truth after a run: nothing lost, nothing doubled, every claim decided (one copy of the SQL)."""

from __future__ import annotations

import time
from collections import Counter

from loadtests.harness.stack import dsn

LIVE = "status IN ('pending', 'processing')"


def query(database_url: str, sql: str, params=(), *, all_rows: bool = False, **options):
    """One statement on its own autocommit connection: its first row (or every row)."""
    import psycopg

    with psycopg.connect(dsn(database_url), autocommit=True, **options) as conn:
        cursor = conn.execute(sql, params)
        if cursor.description is None:  # a statement without rows
            return None
        return cursor.fetchall() if all_rows else cursor.fetchone()


def event_id(database_url: str, slug: str) -> int:
    return query(database_url, "SELECT id FROM events_event WHERE slug = %s", [slug])[0]


def count_rows(database_url: str, event: int, status: str) -> int:
    sql = "SELECT count(*) FROM ticket_queue WHERE event_id = %s AND status = %s"
    return query(database_url, sql, [event, status])[0]


def live_rows(database_url: str, event: int) -> int:
    return query(database_url, f"SELECT count(*) FROM ticket_queue WHERE event_id = %s AND {LIVE}", [event])[0]  # noqa: S608


def invariants(database_url: str, event: int) -> dict:
    """What must hold after any run: tickets == min(capacity, claimants), one per student, every
    entry terminal and linked to its ticket, no claim given up with ``failed:error``."""
    capacity, remaining, tickets, holders, claimants, live, completed_linked, max_attempts = query(
        database_url,
        f"""SELECT e.capacity, e.remaining,
          (SELECT count(*) FROM tickets_ticket WHERE event_id = e.id AND status = 'active'),
          (SELECT count(DISTINCT user_id) FROM tickets_ticket WHERE event_id = e.id AND status = 'active'),
          (SELECT count(DISTINCT user_id) FROM ticket_queue WHERE event_id = e.id),
          (SELECT count(*) FROM ticket_queue WHERE event_id = e.id AND {LIVE}),
          (SELECT count(*) FROM ticket_queue q JOIN tickets_ticket t ON t.id = q.ticket_id WHERE q.event_id = e.id
             AND q.status = 'completed' AND t.user_id = q.user_id AND t.status = 'active'),
          (SELECT coalesce(max(attempts), 0) FROM ticket_queue WHERE event_id = e.id)
        FROM events_event e WHERE e.id = %s""",  # noqa: S608
        [event],
    )
    statuses = dict(
        query(
            database_url,
            "SELECT status || CASE WHEN reason <> '' THEN ':' || reason ELSE '' END, count(*) "
            "FROM ticket_queue WHERE event_id = %s GROUP BY 1 ORDER BY 1",
            [event],
            all_rows=True,
        )
    )
    expected = min(capacity, claimants)
    ok = tickets == expected and holders == tickets and remaining == capacity - tickets and live == 0
    return {
        "capacity": capacity, "remaining": remaining, "claimants": claimants, "tickets": tickets,
        "holders": holders, "expected_tickets": expected, "queue": statuses, "live_entries": live,
        "completed_linked": completed_linked, "max_attempts": max_attempts,
        "ok": ok and completed_linked == tickets and statuses.get("failed:error", 0) == 0,
    }  # fmt: skip


def decisions(database_url: str, event: int) -> dict:
    """Claim-to-decision seconds (``processed_at - created_at``) and when, after the first claim, the
    last claim came, the first and last decisions were made and the last ticket was issued."""
    p, worst, decided, first, last_claim, first_done, last_done, sold_out = query(
        database_url,
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM processed_at - created_at)), max(extract(epoch FROM processed_at - created_at)),"
        " count(processed_at), extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)),"
        " extract(epoch FROM min(processed_at)), extract(epoch FROM max(processed_at)),"
        " (SELECT extract(epoch FROM max(issued_at)) FROM tickets_ticket WHERE event_id = %s)"
        " FROM ticket_queue WHERE event_id = %s",
        [event, event],
    )
    p = [float(v) for v in p or []] or [None] * 3
    since = lambda at: float(at) - float(first) if at is not None and first is not None else None  # noqa: E731
    return {
        "p50": p[0], "p95": p[1], "p99": p[2], "max": float(worst) if worst is not None else None,
        "decided": decided, "last_claim_seconds": since(last_claim), "first_decision_seconds": since(first_done),
        "first_claim_to_last_decision_seconds": since(last_done), "first_claim_to_sold_out_seconds": since(sold_out),
    }  # fmt: skip


def wait_queue_empty(database_url: str, event: int, timeout: float, *, fail: bool = True) -> float:
    """Seconds waited until no entry of the event is pending or processing (``fail``: raise at timeout)."""
    import psycopg

    started = time.monotonic()
    while True:
        try:
            live = live_rows(database_url, event)
        except psycopg.OperationalError:
            live = -1
        if live == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            if fail:
                raise RuntimeError(f"{live} entries still live after {timeout:.0f} s")
            return time.monotonic() - started
        time.sleep(0.5)


def accepted_claims(database_url: str, event: int, results: dict) -> dict:
    """Every claim the load client saw accepted (200/202 with a queue id) must end decided in the table."""
    accepted = {s["queue_id"]: s for s in results["students"] if s["queue_id"]}
    rows = query(
        database_url,
        "SELECT public_id::text, status, reason, extract(epoch FROM created_at), extract(epoch FROM processed_at) "
        "FROM ticket_queue WHERE event_id = %s",
        [event],
        all_rows=True,
    )
    by_id = {row[0]: row for row in rows}
    decided = {qid: s["decision"] for qid, s in accepted.items() if s["decision"]}
    clicks = [click for s in results["students"] for click in s["clicks"]]
    return {
        "accepted": len(accepted),
        "missing_in_table": sum(1 for qid in accepted if qid not in by_id),
        "undecided": sum(1 for qid in accepted if qid in by_id and by_id[qid][1] not in ("completed", "failed")),
        "decided_seen_by_client": len(decided),
        "client_and_table_disagree": sum(1 for q, d in decided.items() if q in by_id and d["status"] != by_id[q][1]),
        "clicks": len(clicks),
        "click_statuses": dict(sorted(Counter(click[1] for click in clicks).items())),
        "students_clicking_more_than_once": sum(1 for s in results["students"] if len(s["clicks"]) > 1),
        "rows": [(float(r[3]), float(r[4]) if r[4] is not None else None, r[1], r[2]) for r in rows],
    }
