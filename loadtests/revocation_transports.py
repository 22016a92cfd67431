"""How a revocation reaches every process: PostgreSQL read by a thread per process, or Redis pub/sub.

    .venv/bin/python -m loadtests.revocation_transports

In this process, on its own PostgreSQL and Redis (``tools.stack.Stack``, no Procfile process).
docs/OPERATIONS.md, "Sessions and revocation", reads the figures:

- PostgreSQL (the design shipped, accounts/revocation.py): the CPU the watcher thread uses idle;
  the delay from a committed entry to its application (``--entries``, at random moments).
- Redis pub/sub (the alternative, as a bare redis-py subscriber thread): the delay from PUBLISH
  to receipt, its idle CPU, and, with the Redis server stopped (SIGSTOP), how long until the
  subscriber notices (health checks every 0.5 s, 0.25 s socket timeout): until then it cannot
  tell "no revocation" from "Redis frozen".
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time

from loadtests import harness
from tools.stack import Stack


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


def redis_pubsub(entries: int, stack: Stack) -> dict:
    import redis

    url = stack.services.redis_url
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

    control = RedisControl(stack.services.data_dir, stack.services.redis_port)
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
    # The watcher thread as in production. Pub/sub first: the feed's watcher, once started, runs
    # until the process ends.
    with Stack("revocation", REVOCATION_WATCH_IN_BACKGROUND="true") as stack:
        return {"redis": redis_pubsub(args.entries, stack), "postgres": postgres(args.entries)}


def markdown(record: dict) -> str:
    pg, rd = record["figures"]["postgres"], record["figures"]["redis"]
    applied, received = pg["commit_to_applied"], rd["publish_to_received"]
    noticed = rd["redis_stopped_noticed_after_s"]
    noticed = f"{noticed} s" if noticed is not None else f"not within {rd['redis_stopped_watched_s']} s"
    rows = [
        [
            "delay from commit / PUBLISH to applied (mean / p95 / max ms)",
            " / ".join(str(applied[k]) for k in ("mean_ms", "p95_ms", "max_ms")),
            " / ".join(str(received[k]) for k in ("mean_ms", "p95_ms", "max_ms")),
        ],
        ["idle CPU of the thread (share of a core)", f"{pg['watcher_idle_cpu_share']:.2%}",
         f"{rd['subscriber_idle_cpu_share']:.2%}"],
        ["Redis stopped (SIGSTOP): noticed after", "nothing to notice", noticed],
        ["messages lost", "0 (a table)", f"{rd['lost']} (none while connected; all while not)"],
    ]  # fmt: skip
    columns = "measure | PostgreSQL feed, read every 250 ms: | Redis pub/sub subscriber:"
    title = "Revocation: PostgreSQL feed or Redis pub/sub"
    return harness.report(record, title, "PostgreSQL and Redis", harness.table(columns, rows))


def main(argv: list[str] | None = None) -> int:
    options = [("--entries", {"type": int, "default": 200})]
    return harness.main(__doc__, argv, run=run, name=lambda a: "revocation", options=options)


if __name__ == "__main__":
    sys.exit(main())
