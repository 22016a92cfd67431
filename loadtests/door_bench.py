"""The door: scans per phone online and offline, the door list for 500 and 5,000 tickets, the sync
of 500 waiting scans.

    .venv/bin/python -m loadtests.door_bench           # docs/benchmarks/door.json
    .venv/bin/python -m loadtests.door_bench --quick

Own stack, the Procfile's web (no worker: the door needs none). Online over HTTP: one phone scans
one ticket after the other (its next scan waits for the answer), then four phones at once. In
Chromium: the real scan page at 390 px, a code typed and its answer shown, online and then with
the network cut (decided from the door list, kept in IndexedDB, synced afterwards). A phone is a
door volunteer's session; the tickets are issued the real way (``ticket_issue_many``).
"""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from loadtests import harness
from tools.stack import Stack, wait_for_port


class Phone:
    """A door phone's HTTP connection, kept alive, with its session and CSRF cookie."""

    def __init__(self, port: int, session: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        csrf = secrets.token_hex(16)
        self.headers = {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf,
                        "Content-Type": "application/json", "Accept-Encoding": "identity"}  # fmt: skip

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request(method, path, json.dumps(body) if body is not None else None, self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started


def setup(sizes: dict[str, int]) -> tuple[dict, list[str]]:
    """An event per part with its tickets issued (``{part: (slug, codes)}``) and four door phones' sessions."""
    from django.contrib.auth import get_user_model
    from django.db.models import F

    from accounts.roles import DOOR_STAFF, roles_ensure
    from tickets.models import Ticket
    from tickets.services import ticket_issue_many
    from tools.testing import bulk_students, door_open_times, logged_in_session

    stamp, events = time.time_ns(), {}
    for part, count in sizes.items():
        event = harness.event(f"door-{part}-{stamp}", count, **door_open_times())
        students = bulk_students(count)
        issued = ticket_issue_many(event_id=event.id, user_ids=[s.pk for s in students])
        events[part] = (event.slug, [issued[s.pk].redeem_code for s in students])
    # Issued at the claim, long before the door: a delta after a full list has nothing to resend.
    Ticket.objects.update(changed_at=F("changed_at") - timedelta(hours=1))
    group = roles_ensure()[DOOR_STAFF]
    phones = [get_user_model().objects.create(username=f"bench-door-{i}-{stamp}") for i in range(4)]
    for phone in phones:
        phone.groups.add(group)
    return events, [logged_in_session(phone) for phone in phones]


def scan_all(phone: Phone, slug: str, codes: list[str]) -> list[float]:
    latencies = []
    for code in codes:
        status, data, seconds = phone.send("POST", "/api/checkin/", {"code": code, "event": slug})
        assert status == 200 and json.loads(data)["result"] == "admitted", (status, data[:200])
        latencies.append(seconds)
    return latencies


def online(port: int, phones: list[str], slug: str, codes: list[str]) -> list[dict]:
    n = len(codes) // 5
    started = time.perf_counter()
    one = scan_all(Phone(port, phones[0]), slug, codes[:n])
    rows = [{"phones": 1, "seconds": time.perf_counter() - started, "latencies": one}]
    chunks = [codes[n * (i + 1) : n * (i + 2)] for i in range(4)]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        four = list(pool.map(lambda i: scan_all(Phone(port, phones[i]), slug, chunks[i]), range(4)))
    rows.append({"phones": 4, "seconds": time.perf_counter() - started, "latencies": [x for f in four for x in f]})
    return rows


def door_list(port: int, phones: list[str], slug: str, codes: list[str]) -> dict:
    phone, timings, body = Phone(port, phones[0]), [], b""
    for _ in range(7):
        status, body, seconds = phone.send("GET", f"/api/door/{slug}/list/?device_id=bench")
        assert status == 200, status
        timings.append(seconds)
    assert len(json.loads(body)["tickets"]) == len(codes)
    cursor = json.loads(body)["cursor"]
    _status, delta, _seconds = phone.send("GET", f"/api/door/{slug}/list/?device_id=bench&since={cursor}")
    return {"tickets": len(codes), "bytes": len(body), "gzip_bytes": len(gzip.compress(body)),
            "download_p50_s": statistics.median(timings), "empty_delta_bytes": len(delta)}  # fmt: skip


def sync(port: int, phones: list[str], slug: str, codes: list[str]) -> list[dict]:
    phone, now = Phone(port, phones[1]), int(time.time() * 1000)
    scans = [{"nonce": f"bench-{i}", "code": c, "scanned_at": now - 60_000 + i * 100} for i, c in enumerate(codes)]
    body = {"device_id": "bench-sync", "device_name": "pintu-bench", "sent_at": now, "scans": scans}
    rows = []
    for attempt in ("first upload", "the same again (a retry)"):
        status, data, seconds = phone.send("POST", f"/api/door/{slug}/sync/", body)
        assert status == 200, (status, data[:300])
        admitted = sum(result["result"] == "admitted" for result in json.loads(data)["results"])
        rows.append({"attempt": attempt, "bytes": len(json.dumps(body)), "seconds": seconds, "admitted": admitted})
    return rows


def in_the_browser(base: str, phone: str, slug: str, codes: list[str]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
            context.add_cookies([{"name": "sessionid", "value": phone, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/scan/")
            page.select_option("#scan-event", slug)
            page.wait_for_selector(f"#scan-list-state[data-tickets='{len(codes)}']", timeout=30_000)
            half = len(codes) // 2
            for way, batch, offline in (("online", codes[:half], False), ("offline", codes[half:], True)):
                context.set_offline(offline)
                latencies, started = [], time.perf_counter()
                for code in batch:
                    before = page.locator("#scan-result").get_attribute("data-scan")
                    t0 = time.perf_counter()
                    page.fill("#scan-code", code)
                    page.press("#scan-code", "Enter")
                    page.wait_for_selector(f"#scan-result:not([data-scan='{before}'])")
                    latencies.append(time.perf_counter() - t0)
                    assert page.locator("#scan-result").get_attribute("data-result") == "admitted"
                rows.append({"way": way, "seconds": time.perf_counter() - started, "latencies": latencies})
            context.set_offline(False)
            page.wait_for_selector("#scan-waiting[data-waiting='0']", timeout=60_000)  # every offline scan synced
        finally:
            browser.close()
    return rows


def run(args) -> dict:
    sizes = {"http": 500, "page": 300, "sync": 500, "list": 500, "big_list": 5000}
    if args.quick:
        sizes = {"http": 25, "page": 10, "sync": 20, "list": 20, "big_list": 50}
    with Stack("door", keep=args.keep) as stack:
        events, phones = setup(sizes)
        stack.start("web", LOG_LEVEL="ERROR")
        wait_for_port(stack.port, stack.running["web"])
        harness.say("scanning over HTTP")
        figures = {"online": online(stack.port, phones, *events["http"])}
        harness.say("scanning in Chromium")
        figures["page"] = [] if args.no_browser else in_the_browser(stack.base_url, phones[2], *events["page"])
        figures["lists"] = [door_list(stack.port, phones, *events[part]) for part in ("list", "big_list")]
        figures["sync"] = sync(stack.port, phones, *events["sync"])
    figures["ok"] = all(row["admitted"] == sizes["sync"] for row in figures["sync"])
    return figures


def markdown(record: dict) -> str:
    f = record["figures"]
    ms = [
        lambda rows: f"{harness.percentile(rows, 50) * 1000:,.0f}",
        lambda rows: f"{harness.percentile(rows, 95) * 1000:,.0f}",
    ]
    online_rows = [
        [f"{r['phones']} phone{'s at once' if r['phones'] > 1 else ''}", len(r["latencies"]),
         f"{len(r['latencies']) / r['seconds'] * 60 / r['phones']:,.0f}", *(p(r["latencies"]) for p in ms)]
        for r in f["online"]
    ]  # fmt: skip
    page_rows = [
        [
            r["way"],
            len(r["latencies"]),
            f"{len(r['latencies']) / r['seconds'] * 60:,.0f}",
            *(p(r["latencies"]) for p in ms),
        ]
        for r in f["page"]
    ]
    list_rows = [
        [f"{r['tickets']:,}", f"{r['bytes']:,}", f"{r['gzip_bytes']:,}", f"{r['download_p50_s'] * 1000:,.0f}",
         f"{r['empty_delta_bytes']:,}"]
        for r in f["lists"]
    ]  # fmt: skip
    sync_rows = [[r["attempt"], f"{r['bytes']:,}", f"{r['seconds'] * 1000:,.0f}", r["admitted"]] for r in f["sync"]]
    return harness.report(
        record,
        "The door",
        "web (granian), PostgreSQL, Redis and Chromium",
        harness.table("online, over HTTP | scans: | scans/min per phone: | p50 ms: | p95 ms:", online_rows),
        harness.table("scan page in Chromium | scans: | scans/min: | p50 ms: | p95 ms:", page_rows)
        or "(the scan page was not measured: `--no-browser`)",
        harness.table("door list, tickets: | bytes: | gzip bytes: | download p50 ms: | empty delta bytes:", list_rows),
        harness.table("sync of the waiting scans | request bytes: | server answer ms: | admitted:", sync_rows),
    )


def main(argv: list[str] | None = None) -> int:
    options = [("--no-browser", {"action": "store_true", "help": "leave out the scan page in Chromium"})]
    return harness.main(__doc__, argv, run=run, name=lambda a: "door", options=options)


if __name__ == "__main__":
    sys.exit(main())
