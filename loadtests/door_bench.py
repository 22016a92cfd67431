"""The door: scans per phone online and offline, the door list for 500 and 5,000 tickets, the sync
of 500 waiting scans. Prints markdown tables (docs/BENCHMARKS.md, "The door").

    .venv/bin/python -m tools.devservices test -- .venv/bin/python -m loadtests.door_bench

The Procfile's web process (granian) on the wrapper's throw-away PostgreSQL and Redis. Online over
HTTP: one phone scans one ticket after the other (its next scan waits for the answer), and four
phones at once. In Chromium: the real scan page, a code typed and answered at a time, online and
with the network cut (decided from the door list, kept in IndexedDB).
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from loadtests.harness.report import percentile
from loadtests.harness.stack import django_here
from tools.devservices import free_port
from tools.testing import door_open_times, stop_process_group, wait_for_port


def setup():
    django_here()
    from django.db import connection

    from accounts.roles import DOOR_STAFF, roles_ensure
    from loadtests.harness.fixtures import make_event, make_sessions, make_students
    from tickets.services import ticket_issue_many
    from tools.testing import start_procfile_process

    stamp = int(time.time()) % 100
    events = {}
    for n, (name, count) in enumerate(
        {"http": 500, "list500": 500, "list5000": 5000, "sync": 500, "page": 300}.items()
    ):
        event = make_event(f"door-{name}-{stamp}", count, **door_open_times())
        students = make_students(count, f"{n}{stamp:02d}{count // 5000}")
        issued = ticket_issue_many(event_id=event.id, user_ids=[s.id for s in students])
        events[name] = (event.slug, [issued[s.id].redeem_code for s in students])
    from django.contrib.auth import get_user_model

    group = roles_ensure()[DOOR_STAFF]
    phones = [get_user_model().objects.create(username=f"bench-door-{i}-{stamp}") for i in range(4)]
    for phone in phones:
        phone.groups.add(group)
    port = free_port()
    web = start_procfile_process("web", connection.settings_dict, PORT=str(port), LOG_LEVEL="ERROR")
    wait_for_port(port, web)
    return port, web, events, make_sessions(phones)


class Phone:
    """A door phone's HTTP connection, kept alive, with its session and CSRF cookie."""

    def __init__(self, port: int, session: dict) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        csrf = secrets.token_hex(16)
        self.headers = {"Cookie": f"sessionid={session['session']}; csrftoken={csrf}", "X-CSRFToken": csrf,
                        "Content-Type": "application/json", "Accept-Encoding": "identity"}  # fmt: skip

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request(method, path, json.dumps(body) if body is not None else None, self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started


def scan_all(phone: Phone, slug: str, codes: list[str]) -> tuple[list[float], float]:
    started = time.perf_counter()
    latencies = []
    for code in codes:
        status, data, seconds = phone.send("POST", "/api/checkin/", {"code": code, "event": slug})
        assert status == 200 and json.loads(data)["result"] == "admitted", (status, data[:200])
        latencies.append(seconds)
    return latencies, time.perf_counter() - started


def online_http(port: int, sessions: list[dict], events: dict) -> list[str]:
    slug, codes = events["http"]
    rows = []
    latencies, took = scan_all(Phone(port, sessions[0]), slug, codes[:100])
    rows.append(("1 phone", 100, took, latencies))
    chunks = [codes[100 + i * 100 : 200 + i * 100] for i in range(4)]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: scan_all(Phone(port, sessions[i]), slug, chunks[i]), range(4)))
    took = time.perf_counter() - started
    rows.append(("4 phones at once", 400, took, [lat for result in results for lat in result[0]]))
    lines = ["| online, over HTTP | scans | scans/min per phone | p50 ms | p95 ms |", "| --- | --- | --- | --- | --- |"]
    for name, count, seconds, lats in rows:
        per_phone = count / seconds * 60 / (4 if "4" in name else 1)
        p50, p95 = percentile(lats, 50) * 1000, percentile(lats, 95) * 1000
        lines.append(f"| {name} | {count} | {per_phone:,.0f} | {p50:.1f} | {p95:.1f} |")
    return lines


def door_list(port: int, sessions: list[dict], events: dict) -> list[str]:
    phone = Phone(port, sessions[0])
    lines = ["| door list | tickets | bytes | gzip bytes | download p50 ms | empty delta bytes |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name in ("list500", "list5000"):
        slug, codes = events[name]
        timings, body = [], b""
        for _ in range(7):
            status, body, seconds = phone.send("GET", f"/api/door/{slug}/list/?device_id=bench")
            assert status == 200, status
            timings.append(seconds)
        cursor = json.loads(body)["cursor"]
        _status, delta, _seconds = phone.send("GET", f"/api/door/{slug}/list/?device_id=bench&since={cursor}")
        assert len(json.loads(body)["tickets"]) == len(codes)
        lines.append(f"| {len(codes):,} tickets | {len(codes):,} | {len(body):,} | {len(gzip.compress(body)):,} | "
                     f"{statistics.median(timings) * 1000:.0f} | {len(delta):,} |")  # fmt: skip
    return lines


def sync(port: int, sessions: list[dict], events: dict) -> list[str]:
    slug, codes = events["sync"]
    phone = Phone(port, sessions[1])
    now = int(time.time() * 1000)
    scans = [
        {"nonce": f"bench-{i}", "code": code, "scanned_at": now - 60_000 + i * 100} for i, code in enumerate(codes)
    ]
    body = {"device_id": "bench-sync", "device_name": "pintu-bench", "sent_at": now, "scans": scans}
    lines = ["| sync of 500 waiting scans | request bytes | server answer ms | admitted |", "| --- | --- | --- | --- |"]
    for name in ("first upload", "the same again (a retry)"):
        status, data, seconds = phone.send("POST", f"/api/door/{slug}/sync/", body)
        assert status == 200, (status, data[:300])
        admitted = sum(result["result"] == "admitted" for result in json.loads(data)["results"])
        lines.append(f"| {name} | {len(json.dumps(body)):,} | {seconds * 1000:.0f} | {admitted} |")
    return lines


def in_the_browser(port: int, sessions: list[dict], events: dict) -> list[str]:
    from playwright.sync_api import sync_playwright

    slug, codes = events["page"]
    base = f"http://127.0.0.1:{port}"
    lines = ["| scan page in Chromium (a code typed, answer shown) | scans | scans/min | p50 ms | p95 ms |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
        context.add_cookies([{"name": "sessionid", "value": sessions[2]["session"], "url": base}])
        page = context.new_page()
        page.goto(f"{base}/scan/")
        page.select_option("#scan-event", slug)
        page.wait_for_selector(f"#scan-list-state[data-tickets='{len(codes)}']", timeout=30_000)
        for name, batch, offline in (
            ("online", codes[:150], False),
            ("offline (door list, IndexedDB)", codes[150:], True),
        ):
            context.set_offline(offline)
            latencies = []
            started = time.perf_counter()
            for code in batch:
                before = page.locator("#scan-result").get_attribute("data-scan")
                t0 = time.perf_counter()
                page.fill("#scan-code", code)
                page.press("#scan-code", "Enter")
                page.wait_for_selector(f"#scan-result:not([data-scan='{before}'])")
                latencies.append(time.perf_counter() - t0)
                assert page.locator("#scan-result").get_attribute("data-result") == "admitted"
            took = time.perf_counter() - started
            p50, p95 = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
            lines.append(f"| {name} | {len(batch)} | {len(batch) / took * 60:,.0f} | {p50:.0f} | {p95:.0f} |")
        context.set_offline(False)
        page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=60_000)
        browser.close()
    return lines


def main() -> int:
    port, web, events, sessions = setup()
    try:
        sections = [online_http(port, sessions, events), in_the_browser(port, sessions, events),
                    door_list(port, sessions, events), sync(port, sessions, events)]  # fmt: skip
    finally:
        stop_process_group(web)
    one, five, _ = os.getloadavg()
    print(
        f"\nRun {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {one:.1f} / {five:.1f} at the end.\n"
    )
    print("\n\n".join("\n".join(section) for section in sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
