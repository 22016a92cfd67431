"""The drills' figures as Markdown tables, and their place in docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loadtests import run as harness
from loadtests.report import percentile, replace_marked_block

ROOT = Path(__file__).resolve().parent.parent.parent
DRILLS_HEADING = "## Failure drills"


def clock(at: float | None, origin: float) -> str:
    if at is None:
        return "–"
    return f"{time.strftime('%H:%M:%S', time.gmtime(at))} (t{at - origin:+.0f} s)"


def alerts_table(received: list[dict], origin: float) -> list[str]:
    lines = [
        "| alert (webhook) | state | value | threshold | received at | signature |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for alert in received:
        value = alert.get("value")
        lines.append(
            f"| `{alert.get('rule', '?')}` | {alert.get('event', alert.get('state', '?'))} | {value} "
            f"| {alert.get('threshold')} "
            f"| {clock(alert['at'], origin)} | {'valid' if alert['valid_signature'] else 'INVALID'} |"
        )
    if not received:
        lines.append("| (none) | | | | | |")
    return lines


def machine_line() -> str:
    """The machine, and how busy it was (the drills share two cores with whatever else runs)."""
    m = harness.machine()
    one, five, _ = os.getloadavg()
    return (
        f"{m['cpus']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, Linux {m['kernel']}; "
        f"load generator, PostgreSQL, Redis, web, worker and beat on the same machine; load average "
        f"{one:.1f} (1 min) / {five:.1f} (5 min) when the drill ended"
    )


DRILLS_INTRO = (
    f"{DRILLS_HEADING}\n\nScripts in `loadtests/drills/`; each starts its own PostgreSQL, Redis, web "
    "(uvicorn, 2 workers), Celery worker and beat with the Procfile's command lines, breaks "
    "something on purpose, checks the database afterwards, and stops everything it started. "
    "`--quick` runs the same drill with tiny numbers (`loadtests/tests/test_drills.py`).\n"
)


def update_benchmarks(name: str, block: str, path: Path | None = None) -> None:
    """Put ``block`` between this drill's markers in the "Failure drills" section."""
    replace_marked_block(
        path or ROOT / "docs" / "BENCHMARKS.md",
        marker=f"drill:{name}",
        block=block,
        heading=DRILLS_HEADING,
        intro=DRILLS_INTRO,
    )


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def summarise_requests(samples: list[list], windows: dict[str, tuple[float, float]]) -> list[dict]:
    """Per time window: requests, error rate (5xx and connection errors), statuses, p50/p95."""
    rows = []
    for name, (begin, end) in windows.items():
        if end <= begin:
            continue
        chosen = [s for s in samples if begin <= s[0] < end]
        statuses: dict[int, int] = {}
        for sample in chosen:
            statuses[sample[3]] = statuses.get(sample[3], 0) + 1
        errors = sum(n for code, n in statuses.items() if code >= 500 or code == 0)
        reads = [s[2] for s in chosen if s[1] != "claim"]
        claims = [s[2] for s in chosen if s[1] == "claim"]
        rows.append(
            {
                "window": name,
                "seconds": end - begin,
                "requests": len(chosen),
                "rps": len(chosen) / max(1e-6, end - begin),
                "errors": errors,
                "error_rate": errors / len(chosen) if chosen else 0.0,
                "statuses": dict(sorted(statuses.items())),
                "p50": percentile([s[2] for s in chosen], 50),
                "p95": percentile([s[2] for s in chosen], 95),
                "reads_p95": percentile(reads, 95),
                "claims_p95": percentile(claims, 95),
                "claims": len(claims),
            }
        )
    return rows


def requests_table(rows: list[dict]) -> list[str]:
    lines = [
        "| window | length | requests | req/s | errors (5xx + refused) | error rate | p50 ms | p95 ms "
        "| reads p95 ms | claims | claims p95 ms | statuses |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        codes = ", ".join(f"{'conn. error' if c == 0 else c}: {n}" for c, n in r["statuses"].items())
        lines.append(
            f"| {r['window']} | {r['seconds']:.0f} s | {r['requests']} | {r['rps']:.0f} | {r['errors']} "
            f"| {r['error_rate'] * 100:.2f} % | {fmt_ms(r['p50'])} | {fmt_ms(r['p95'])} | {fmt_ms(r['reads_p95'])} "
            f"| {r['claims']} | {fmt_ms(r['claims_p95'])} | {codes} |"
        )
    return lines


def alerts_and_verdict(f: dict, origin: float) -> list[str]:
    """The end of a drill report: invariants, the alerts the webhook received, the verdict."""
    from loadtests.drills.checks import invariants_table

    return [
        *invariants_table(f["invariants"]),
        "",
        "Alerts received by the webhook receiver (HMAC checked)"
        + (
            f"; the drill's event was cancelled at {clock(f['event_cancelled_at'], origin)} "
            "and the drill waited for the alerts to resolve:"
            if f.get("event_cancelled_at")
            else ":"
        ),
        "",
        *alerts_table(f["alerts"], origin),
        "",
        f"Verdict: {'passed' if f['ok'] else '**FAILED**'}.",
    ]
