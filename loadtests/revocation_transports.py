"""How a revocation reaches every process: PostgreSQL read by a thread per process, or Redis pub/sub.

    .venv/bin/python -m tools.devservices test -- .venv/bin/python -m loadtests.revocation_transports

In this process, on the environment's PostgreSQL and Redis (``devservices test`` starts private
ones, whose Redis it may stop). docs/OPERATIONS.md, "Sessions and revocation", reads the figures:

- PostgreSQL (the design shipped, accounts/revocation.py): the cost of one read of the feed
  (``poll``: client CPU and wall time, empty, and with 1,000 ended sessions to load at start);
  the CPU the watcher thread uses idle; the delay from a committed entry to its application by
  the watcher (``--entries`` entries, at random moments of its period).
- Redis pub/sub (the alternative, as a bare redis-py subscriber thread): the delay from PUBLISH
  to receipt, its idle CPU, and, with the Redis server stopped (SIGSTOP), how long until the
  subscriber notices (health checks every 0.5 s, 0.25 s socket timeout): until then it cannot
  tell "no revocation" from "Redis frozen".
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from loadtests.harness import report
from loadtests.harness.stack import django_here


def _cpu_share(seconds: float) -> float:
    """Process CPU seconds per wall second while the main thread sleeps (the background thread's share)."""
    before = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - before) / seconds


def _stats(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
        "p95_ms": round(values[int(0.95 * (len(values) - 1))] * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2),
    }


def postgres(entries: int) -> dict:
    from django.db import connection

    from accounts import revocation
    from accounts.models import Revocation

    Revocation.objects.all().delete()
    revocation.reset()
    results = {}
    revocation.poll()
    cpu, wall = [], []
    for _ in range(500):
        c, w = time.process_time(), time.perf_counter()
        revocation.poll()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    results["read_empty"] = {"cpu": _stats(cpu), "wall": _stats(wall)}
    for i in range(1000):
        revocation.session_revoke(session_id=f"bench-{i}", user_id=None)
    revocation.reset()
    c, w = time.process_time(), time.perf_counter()
    revocation.poll()
    results["first_read_1000_sessions_ms"] = {
        "cpu": round((time.process_time() - c) * 1000, 2),
        "wall": round((time.perf_counter() - w) * 1000, 2),
    }
    connection.close()

    revocation.in_sync()  # starts the real watcher thread, as in every web process
    time.sleep(1)
    results["watcher_idle_cpu_share"] = round(_cpu_share(10), 4)
    delays = []
    for i in range(entries):
        revocation.users_changed(user_ids=[10**9 + i])  # autocommit: committed on return
        committed = time.perf_counter()
        seq = Revocation.objects.order_by("-seq").values_list("seq", flat=True).first()
        while (revocation.state.last_seq or 0) < seq:
            time.sleep(0.0005)
        delays.append(time.perf_counter() - committed)
        time.sleep(random.uniform(0, 0.25))  # commits land anywhere in the watcher's period
    results["commit_to_applied"] = _stats(delays)
    Revocation.objects.all().delete()
    return results


def redis_pubsub(entries: int) -> dict:
    import redis

    url = os.environ["REDIS_URL"]
    publisher = redis.Redis.from_url(url)
    subscriber = redis.Redis.from_url(url, socket_timeout=0.25, health_check_interval=0.5)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("tw:revocations")
    received: dict[int, float] = {}
    failed_at: list[float] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                message = pubsub.get_message(timeout=0.2)
            except Exception:  # what the subscriber notices when Redis stops answering
                failed_at.append(time.perf_counter())
                return
            if message is not None:
                received[int(message["data"])] = time.perf_counter()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.5)
    results = {"subscriber_idle_cpu_share": round(_cpu_share(10), 4)}
    sent = {}
    for i in range(entries):
        sent[i] = time.perf_counter()
        publisher.publish("tw:revocations", i)
        time.sleep(random.uniform(0, 0.25))
    time.sleep(0.5)
    results["publish_to_received"] = _stats([received[i] - sent[i] for i in sent if i in received])
    results["lost"] = len(sent) - len(received)

    from tools.testing import RedisControl

    control = RedisControl(Path(os.environ["TICKETWAR_TEST_DATA_DIR"]), urlparse(url).port)
    stopped = time.perf_counter()
    control.hang()
    try:
        thread.join(timeout=30)
        results["redis_stopped_noticed_after_s"] = round(failed_at[0] - stopped, 2) if failed_at else None
        results["redis_stopped_watched_s"] = round(time.perf_counter() - stopped, 1)
    finally:
        control.resume()
        stop.set()
        thread.join(timeout=5)
    return results


def run(args) -> dict:
    os.environ["REVOCATION_WATCH_IN_BACKGROUND"] = "true"  # the watcher thread as in production
    django_here()
    # Pub/sub first: the feed's watcher thread, once started, runs until the process ends.
    figures = {"redis": redis_pubsub(args.entries), "postgres": postgres(args.entries)}
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def markdown(f: dict) -> str:
    pg, rd = f["postgres"], f["redis"]
    noticed = (
        f"{rd['redis_stopped_noticed_after_s']} s"
        if rd["redis_stopped_noticed_after_s"] is not None
        else f"not within {rd['redis_stopped_watched_s']} s"
    )
    ratio_delay = pg["commit_to_applied"]["mean_ms"] / max(rd["publish_to_received"]["mean_ms"], 0.001)
    ratio_cpu = pg["watcher_idle_cpu_share"] / max(rd["subscriber_idle_cpu_share"], 0.0001)
    rows = [
        f"| delay from commit / PUBLISH to applied (mean / p95 / max ms) | "
        f"{pg['commit_to_applied']['mean_ms']} / {pg['commit_to_applied']['p95_ms']} / "
        f"{pg['commit_to_applied']['max_ms']} | {rd['publish_to_received']['mean_ms']} / "
        f"{rd['publish_to_received']['p95_ms']} / {rd['publish_to_received']['max_ms']} |",
        f"| idle CPU of the thread (share of a core) | {pg['watcher_idle_cpu_share']:.2%} | "
        f"{rd['subscriber_idle_cpu_share']:.2%} |",
        f"| one read of the feed, empty: client CPU / wall (mean ms) | {pg['read_empty']['cpu']['mean_ms']} / "
        f"{pg['read_empty']['wall']['mean_ms']} | – |",
        f"| first read with 1,000 ended sessions: CPU / wall ms | {pg['first_read_1000_sessions_ms']['cpu']} / "
        f"{pg['first_read_1000_sessions_ms']['wall']} | – |",
        f"| Redis stopped (SIGSTOP): noticed after | nothing to notice | {noticed} |",
        f"| messages lost | 0 (a table) | {rd['lost']} (none while connected; all while not) |",
    ]
    table = report.table("measure | PostgreSQL feed, read every 250 ms | Redis pub/sub subscriber", rows,
                         ["---", "---:", "---:"])  # fmt: skip
    title = f"### Revocation: PostgreSQL feed or Redis pub/sub ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
    command = ".venv/bin/python -m tools.devservices test -- " + report.command_line("loadtests.revocation_transports")
    lines = report.heading(title, command) + table
    return "\n".join(lines) + (
        f"\n\nOne run, both in one process. Feed against pub/sub: mean delay ×{ratio_delay:.0f}, idle CPU"
        f" ×{ratio_cpu:.1f}. Load average at the end: {f['load_average']}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--entries", type=int, default=200)
    args = parser.parse_args(argv)
    return report.main(args, run=run, markdown=markdown)


if __name__ == "__main__":
    sys.exit(main())
