"""One racing process of the waiting-list order test (``test_offer_order.py``).

    python -m waitlist.tests.offer_race <start_at> <jobs.json>

Waits until the wall-clock time ``start_at`` (so every process starts at once), then runs its
jobs from several threads, each on its own database connection: ``["give_back", ticket id,
user id]``, ``["fill", event id]``, ``["expire", seconds ahead]``, ``["sweep"]``. A give-back
also fills the list after its commit, as in production (``events.seats`` after a seat change). Prints
``{"errors": [...]}`` (unexpected exceptions only: a refusal is a fine answer) and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import timedelta

THREADS = 3


def _run(job: list) -> None:
    from django.utils import timezone

    from tickets.services import ticket_return
    from waitlist.services import waitlist_expire_offers, waitlist_fill, waitlist_fill_all

    kind, *args = job
    if kind == "give_back":
        ticket_return(ticket_id=args[0], user_id=args[1])
    elif kind == "fill":
        waitlist_fill(event_id=args[0])
    elif kind == "expire":
        waitlist_expire_offers(now=timezone.now() + timedelta(seconds=args[0]))
    elif kind == "sweep":
        waitlist_fill_all()
    else:
        raise ValueError(f"unknown job {kind!r}")


def main(start_at: float, jobs: list[list]) -> list[str]:
    from django.db import connection

    from tickets.exceptions import TicketError
    from waitlist.exceptions import WaitlistError

    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not jobs:
                        return
                    job = jobs.pop(0)
                try:
                    _run(job)
                except (TicketError, WaitlistError):
                    pass
                except Exception as exc:
                    errors.append(f"{job}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    time.sleep(max(0.0, start_at - time.time()))
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
    import django

    django.setup()
    with open(sys.argv[2], encoding="utf-8") as handle:
        job_list = json.load(handle)
    print(json.dumps({"errors": main(float(sys.argv[1]), job_list)}), flush=True)
