"""One Locust run's raw figures (``loadtests.run``) as the markdown of docs/BENCHMARKS.md."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

from loadtests.harness.report import codes as _codes
from loadtests.harness.report import ms as _ms
from loadtests.harness.report import percentile, table

# Our targets at 1000 users (docs/BENCHMARKS.md); the user's are looser (p95 < 500 ms, hit
# ratio > 80%, queue delay < 5 s).
TARGET_READ_P95_MS = 300
TARGET_CLAIM_P95_MS = 500
TARGET_ERROR_RATE = 0.001
TARGET_HIT_RATIO = 0.95
TARGET_DECISION_P95_S = 2.0
# The opening spike: from the opening to this many seconds after it.
SPIKE_SECONDS = 60
# The countdown: the last seconds before the opening, everyone logged in and polling.
COUNTDOWN_SECONDS = 25


def request_class(name: str) -> str:
    if "/claim/" in name:
        return "claim"
    if "/accounts/login/" in name:
        return "login"
    if name.startswith("WS "):
        return "websocket"
    if name.startswith("GET "):
        return "read"
    return "other"


def locust_stats(path: Path) -> list[dict]:
    """Rows of Locust's ``<prefix>_stats.csv``: one per request name, plus ``Aggregated``."""
    times = {"p50": "50%", "p95": "95%", "p99": "99%", "max": "Max Response Time"}
    with path.open(newline="") as handle:
        return [
            {"type": row["Type"], "name": row["Name"], "requests": int(row["Request Count"]),
             "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
             **{key: _num(row[column]) for key, column in times.items()}}
            for row in csv.DictReader(handle)
        ]  # fmt: skip


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _claim_arrival(windows: list[tuple[float, float]]) -> dict:
    """How tight the spike was (90% of claims sent within N s) and how fast they were answered."""
    if not windows:
        return {}
    sent = sorted(start for start, _end in windows)
    low, high = sent[int(0.05 * (len(sent) - 1))], sent[int(0.95 * (len(sent) - 1))]
    span = max(end for _start, end in windows) - sent[0]
    return {
        "sent_90pct_within_s": round(high - low, 2),
        "first_sent_to_last_answered_s": round(span, 2),
        "answered_per_second": round(len(windows) / span, 1) if span > 0 else None,
    }


def _summary(times: list[float]) -> dict:
    return {"count": len(times), **{f"p{q}": percentile(times, q) for q in (50, 95, 99)}}


def client_figures(results: dict) -> dict:
    """Percentiles per request class over the whole run and during the opening spike."""
    samples = results.get("samples", [])
    opens_at = results.get("opens_at")
    whole: dict[str, list[float]] = defaultdict(list)
    spike: dict[str, list[float]] = defaultdict(list)
    countdown: dict[str, list[float]] = defaultdict(list)
    by_name: dict[str, list[float]] = defaultdict(list)
    by_name_failures: dict[str, int] = defaultdict(int)
    claim_windows: list[tuple[float, float]] = []
    per_second: dict[int, int] = defaultdict(int)
    failures = 0
    for at, name, elapsed, ok in samples:
        kind = request_class(name)
        whole[kind].append(elapsed)
        if opens_at and opens_at <= at <= opens_at + SPIKE_SECONDS:
            spike[kind].append(elapsed)
        elif opens_at and opens_at - COUNTDOWN_SECONDS <= at < opens_at:
            countdown[kind].append(elapsed)
        per_second[int(at)] += 1
        failures += 0 if ok else 1
        by_name[name].append(elapsed)
        if kind == "claim":
            claim_windows.append((at - elapsed / 1000, at))
        by_name_failures[name] += 0 if ok else 1
    spike_seconds = [
        count for second, count in per_second.items() if opens_at and 0 <= second - opens_at < SPIKE_SECONDS
    ]
    # The spike window, cut short if the run ended before SPIKE_SECONDS after the opening.
    length = max(1, max(per_second) - min(per_second) + 1) if per_second else 1
    spike_length = min(SPIKE_SECONDS, max(per_second) - opens_at + 1) if opens_at and per_second else 0
    return {
        "requests": len(samples),
        "failures": failures,
        "peak_rps": max(per_second.values()) if per_second else 0,
        "mean_rps": round(len(samples) / length, 1),
        "claim_arrival": _claim_arrival(claim_windows),
        "spike_mean_rps": round(sum(spike_seconds) / spike_length, 1) if spike_seconds and spike_length > 0 else 0,
        "spike_seconds": round(spike_length),
        "whole": {kind: _summary(times) for kind, times in whole.items()},
        "spike": {kind: _summary(times) for kind, times in spike.items()},
        "countdown": {kind: _summary(times) for kind, times in countdown.items()},
        "endpoints": [
            {
                **_summary(times),
                "name": name,
                "failures": by_name_failures[name],
                "max": max(times),
                "rps": len(times) / length,
            }
            for name, times in sorted(by_name.items())
        ],
        "claim_codes": results.get("claim_codes", {}),
        "queue_outcomes": results.get("queue_outcomes", {}),
        "codes": results.get("codes", {}),
        "decision_ms": _summary(results.get("decision_ms", [])),
        "users_logged_in": results.get("users_logged_in"),
        "ws_pushes": results.get("ws_pushes"),
        "ws_fallbacks": results.get("ws_fallbacks"),
    }


# --- markdown ------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def markdown(figures: dict) -> str:
    # Runs recorded before the shared invariants named it "completed_with_ticket".
    linked = figures["db"].get("completed_linked", figures["db"].get("completed_with_ticket"))
    c, db, m = figures["client"], figures["db"], figures["machine"]
    versions = figures.get("versions", {})
    reads, claims = c["spike"].get("read", {}), c["spike"].get("claim", {})
    reads_all, claims_all = c["whole"].get("read", {}), c["whole"].get("claim", {})
    total = c["requests"] or 1
    error_rate = c["failures"] / total
    hit_ratio = figures["metrics"].get("cache_hit_ratio")
    decision = db["decision_seconds"]
    refusals = {k: v for k, v in sorted(c["claim_codes"].items()) if k not in ("200", "202")}
    expected_tickets = min(db["capacity"], figures["users"])
    invariant = db["tickets"] == expected_tickets and db["holders"] == db["tickets"]
    invariant = invariant and db["remaining"] == db["capacity"] - db["tickets"] and figures["queue_left"] == 0
    mem, single = figures["memory_mb"]["max_total"], figures["memory_mb"]["max_single"]
    lines = [
        f"### {figures['users']} concurrent users ({figures['started_at']})",
        "",
        f"Command: `{figures['command']}`  ",
        f"Locust: `python {_shorten(figures['locust_command'])}`  ",
        f"Machine: {m['cpus']} vCPU {m['cpu']}, {m['ram_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']}, "
        f"PostgreSQL {versions.get('postgresql', '?')}, Redis {versions.get('redis', '?')}. Locust (one process) "
        f"shared the {m['cpus']} cores with {_web(figures)}, the Celery worker (× 2) and beat; mean CPU use "
        f"{figures.get('cpu_percent_mean', '–')}%"
        + ("; Locust warned that its own CPU use went above 90%" if figures.get("locust_cpu_warning") else "")
        + ".  ",
        f"Scenario: {figures['users']} students arrive at {figures['spawn_rate']:g}/s and log in; the event "
        f"({figures['capacity']} seats) opens {figures['opens_in']} s after the start; everyone claims within "
        f"0.2–1.5 s of the opening; {figures['ws_fraction']:.0%} watch the queue by websocket, the rest poll every "
        f"1–2 s; the run lasts {figures['duration']} s."
        + (
            f" Web processes with a psycopg pool of at most {figures['web_db_pool']} connections each "
            "(`DATABASE_POOL_SIZE`)."
            if str(figures.get("web_db_pool", "0")) != "0"
            else ""
        ),
        "",
        *table("measure | measured | target (ours) |", []),
        f"| requests (whole run) | {c['requests']:,} at {c.get('mean_rps', 0):.0f}/s mean, {c['peak_rps']}/s peak "
        f"(1 s), {c['spike_mean_rps']}/s over the first {c.get('spike_seconds', SPIKE_SECONDS)} s after opening | | |",
        f"| reads p50 / p95 / p99, opening spike | {_ms(reads.get('p50'))} / {_ms(reads.get('p95'))} / "
        f"{_ms(reads.get('p99'))} ms ({reads.get('count', 0):,} requests) | p95 ≤ {TARGET_READ_P95_MS} ms | "
        f"{_verdict(reads.get('p95') is not None and reads['p95'] <= TARGET_READ_P95_MS)} |",
        f"| reads p50 / p95 / p99, last {COUNTDOWN_SECONDS} s of the countdown | "
        f"{_ms(c.get('countdown', {}).get('read', {}).get('p50'))} / "
        f"{_ms(c.get('countdown', {}).get('read', {}).get('p95'))} / "
        f"{_ms(c.get('countdown', {}).get('read', {}).get('p99'))} ms | | |",
        f"| reads p50 / p95 / p99, whole run (login phase included) | {_ms(reads_all.get('p50'))} / "
        f"{_ms(reads_all.get('p95'))} / {_ms(reads_all.get('p99'))} ms | | |",
        f"| claims p50 / p95 / p99 | {_ms(claims.get('p50'))} / {_ms(claims.get('p95'))} / "
        f"{_ms(claims.get('p99'))} ms ({claims_all.get('count', 0):,} claims) | p95 ≤ {TARGET_CLAIM_P95_MS} ms | "
        f"{_verdict(claims.get('p95') is not None and claims['p95'] <= TARGET_CLAIM_P95_MS)} |",
        f"| claim spike: 90% of claims sent within / first sent to last answered / answered per second | "
        f"{c.get('claim_arrival', {}).get('sent_90pct_within_s', '–')} s / "
        f"{c.get('claim_arrival', {}).get('first_sent_to_last_answered_s', '–')} s / "
        f"{c.get('claim_arrival', {}).get('answered_per_second', '–')} | | |",
        f"| logins p50 / p95 | {_ms(c['whole'].get('login', {}).get('p50'))} / "
        f"{_ms(c['whole'].get('login', {}).get('p95'))} ms ({c.get('users_logged_in')} students logged in) | | |",
        f"| unexpected failures | {c['failures']} of {c['requests']:,} ({error_rate:.3%}) | < 0.1% | "
        f"{_verdict(error_rate < TARGET_ERROR_RATE)} |",
        f"| claim refusals (expected) | {_codes(refusals) or 'none'} | | |",
        f"| cache hit ratio (`/metrics`) | {_pct(hit_ratio)} "
        f"({_families(figures['metrics'].get('cache_families', {}))}) "
        f"| ≥ 95% | {_verdict(None if hit_ratio is None else hit_ratio >= TARGET_HIT_RATIO)} |",
        f"| claim-to-decision p50 / p95 / p99 / max (`ticket_queue`) | {_s(decision['p50'])} / {_s(decision['p95'])} / "
        f"{_s(decision['p99'])} / {_s(decision['max'])} ({decision['decided']} decided) | p95 ≤ "
        f"{TARGET_DECISION_P95_S:g} s | "
        f"{_verdict(decision['p95'] is not None and decision['p95'] <= TARGET_DECISION_P95_S)} |",
        f"| claim-to-decision seen by the students p50 / p95 | {_ms(c['decision_ms'].get('p50'))} / "
        f"{_ms(c['decision_ms'].get('p95'))} ms (includes the 1–2 s polling interval) | | |",
        f"| first claim → sold out / → last decision | {_s(db['first_claim_to_sold_out_seconds'])} / "
        f"{_s(db['first_claim_to_last_decision_seconds'])} | | |",
        f"| queue outcomes (`ticket_queue`) | {_codes(db['queue'])} | | |",
        f"| tickets issued == capacity, one per student | {db['tickets']} tickets, {db['holders']} holders, "
        f"remaining {db['remaining']}, {linked} completed entries with their ticket, "
        f"{figures['queue_left']} entries left undecided | {expected_tickets}, one each, none left | "
        f"{_verdict(invariant)} |",
        f"| RSS max: web (all) / largest web process | {mem.get('web', 0):.0f} / {single.get('web', 0):.0f} MB | | |",
        f"| RSS max: worker (all) / beat / Locust | {mem.get('worker', 0):.0f} / {mem.get('beat', 0):.0f} / "
        f"{mem.get('locust', 0):.0f} MB | | |",
        f"| PostgreSQL sessions opened during the run | {figures.get('pg_sessions_opened', '–')} | | |",
        f"| CPU seconds: web / worker / beat / Locust | {_cpu(figures.get('cpu_seconds', {}))} | | |",
        _spike_cpu_row(figures.get("spike_cpu") or {}),
        f"| websocket watchers: pushes received / fell back to polling | {c.get('ws_pushes')} / "
        f"{c.get('ws_fallbacks')} | | |",
        f"| tracebacks or ERROR lines in the process logs | {_codes(figures.get('errors_in_logs', {}))} | 0 | "
        f"{_verdict(not any(figures.get('errors_in_logs', {}).values()))} |",
        "",
        "Per endpoint (whole run, every request Locust made; ms):",
        "",
        *table("endpoint | requests | failures | req/s | p50 | p95 | p99 | max", [], ["---", *["---:"] * 7]),
    ]
    for row in c.get("endpoints", []):
        lines.append(
            f"| {row['name']} | {row['count']:,} | {row['failures']} | {row['rps']:.1f} | {_ms(row['p50'])} | "
            f"{_ms(row['p95'])} | {_ms(row['p99'])} | {_ms(row['max'])} |"
        )
    lines += ["", *ratio_lines(figures), ""]
    lines.append(f"Raw figures: `docs/loadtest/{figures['name']}.json`.")
    return "\n".join(lines) + "\n"


def ratio_lines(figures: dict) -> list[str]:
    ratios = figures.get("ratios")
    if not ratios:
        error = figures.get("ratios_error")
        return [f"Ratios: not measured ({error.splitlines()[-1]})."] if error else []
    lines = [
        "Ratios, measured right after the run on the same, idle, stack:",
        "",
        *table("pair | ours | machine's limit | ratio", [], ["---", "---:", "---:", "---:"]),
    ]
    pg = {row["clients"]: row["tps"] for row in ratios["pgbench"]}
    for row in ratios["ticket_issue"]:
        limit = pg.get(row["threads"])
        errors = f", errors {row['errors']}" if row["errors"] else ""
        lines.append(
            f"| `ticket_issue` allocations/s, {row['threads']} thread(s) vs pgbench single-row UPDATE tx/s, "
            f"{row['threads']} client(s){errors} | {row['per_second']:,.0f} | {limit:,.0f} | "
            f"{row['per_second'] / limit:.0%} |"
            if limit
            else f"| `ticket_issue`, {row['threads']} thread(s) | {row['per_second']:,.0f} | – | – |"
        )
    many = ratios.get("ticket_issue_many")
    if many and pg.get(1):
        lines.append(
            f"| `ticket_issue_many` allocations/s (the worker's batches of {many['batch']}), 1 thread vs pgbench "
            f"single-row UPDATE tx/s, 1 client | {many['per_second']:,.0f} | {pg[1]:,.0f} | "
            f"{many['per_second'] / pg[1]:.0%} |"
        )
    http = ratios.get("http", [])
    if len(http) == 2:
        event, ping = http
        lines.append(
            f"| cached `GET /api/events/<slug>/` vs `GET /api/ping/` req/s ({event['connections']} keep-alive "
            f"connections, staff session; p95 {event['p95_ms']:.0f} vs {ping['p95_ms']:.0f} ms) | "
            f"{event['per_second']:,.0f} | {ping['per_second']:,.0f} | {event['per_second'] / ping['per_second']:.0%} |"
        )
    return lines


def _web(figures: dict) -> str:
    """The web processes of a run (runs before the split had no ws process and no "web_server")."""
    workers, threads = figures.get("web_workers", 2), figures.get("web_threads", 8)
    if figures.get("web_server", "uvicorn") == "uvicorn":
        return f"web (uvicorn × {workers}, {threads} HTTP threads each)"
    return f"web ({figures['web_server']}, {workers} workers × {threads} threads), ws (uvicorn)"


def _shorten(command: str) -> str:
    return re.sub(r"/\S*/ticketwar-loadtest-[^/ ]+/", "$TMP/", command).replace(str(Path.cwd()) + "/", "")


def _families(families: dict) -> str:
    parts = []
    for name, counts in sorted(families.items()):
        total = counts.get("hit", 0) + counts.get("miss", 0)
        if total:
            parts.append(f"{name} {counts.get('hit', 0) / total:.1%} of {total:,.0f}")
    return "; ".join(parts) or "no cache reads counted"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _spike_cpu_row(spike: dict) -> str:
    if not spike:
        return "| CPU seconds in the opening spike | not sampled | | |"
    return (
        f"| CPU seconds in the {spike['seconds']:g} s after opening: web / worker / beat / Locust; machine busy "
        f"| {_cpu(spike['cpu_seconds'])}; {spike['cpu_percent_mean']:g}% of all cores | | |"
    )


def _cpu(cpu: dict) -> str:
    return " / ".join(f"{cpu.get(role, 0):.0f}" for role in ("web", "worker", "beat", "locust"))
