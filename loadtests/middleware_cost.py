"""CPU per middleware on a logged-in request, in process: each middleware of ``settings.MIDDLEWARE`` added in turn.

    .venv/bin/python -m tools.devservices test -- .venv/bin/python -m loadtests.middleware_cost

Django's WSGI handler in this process (no server, one thread) on the environment's PostgreSQL and
Redis, ``GET /api/ping/`` from many logged-in students in turn; CPU time (``time.process_time``).
docs/BENCHMARKS.md, "The framework's floor". Prints a markdown table.
"""

from __future__ import annotations

import io
import os
import sys
import time

from loadtests.harness import report
from loadtests.harness.stack import django_here

os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ.setdefault("DEBUG", "false")
# The revocation feed read in the background, as in every web process: the user from memory.
os.environ.setdefault("REVOCATION_WATCH_IN_BACKGROUND", "true")


def _environ(path: str, session: dict) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json", "HTTP_ACCEPT_LANGUAGE": "id,en;q=0.8",
        "HTTP_COOKIE": f"sessionid={session['session']}; csrftoken={session['csrf']}",
        "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        "SERVER_PROTOCOL": "HTTP/1.1",
    }  # fmt: skip


def _cost(middleware: list[str], path: str, sessions: list[dict], rounds: int) -> float:
    """CPU ms per request through Django's WSGI handler with ``middleware``."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware):
        handler = WSGIHandler()

        def start_response(status, headers):
            assert status.startswith(("200", "429")), status

        for session in sessions[:50]:  # warm-up
            b"".join(handler(_environ(path, session), start_response))
        started = time.process_time()
        for i in range(rounds):
            b"".join(handler(_environ(path, sessions[i % len(sessions)]), start_response))
        return (time.process_time() - started) * 1000 / rounds


def run(args) -> dict:
    django_here()
    from django.conf import settings

    from loadtests.harness.fixtures import make_sessions, make_students

    # Enough budget that no student is refused during the run (the limit is not what is measured).
    settings.RATELIMIT_API_USER = "100000/m"
    sessions = make_sessions(make_students(args.students, f"77{int(time.time()) % 100:02d}"))
    full = list(settings.MIDDLEWARE)
    _cost(full, args.path, sessions, len(sessions))  # first contact: every session and user cached
    # The machine may be shared: each row is the least of --repeats runs, taken in turns.
    best = [float("inf")] * (len(full) + 1)
    for _ in range(args.repeats):
        for k in range(len(full) + 1):
            best[k] = min(best[k], _cost(full[:k], args.path, sessions, args.rounds))
    return {
        "path": args.path,
        "rows": [("(none)", best[0])] + [(full[k - 1], best[k]) for k in range(1, len(full) + 1)],
    }


def markdown(figures: dict) -> str:
    rows, total, previous = [], figures["rows"][-1][1], None
    for name, cost in figures["rows"]:
        delta = "" if previous is None else f"{cost - previous:+.3f}"
        rows.append(f"| `{name}` | {cost:.3f} | {delta} | {(cost - (previous or 0)) / total:.0%} |")
        previous = cost
    header = (
        f"middleware added (in order) | CPU ms/request, cumulative | this middleware | share of `{figures['path']}`"
    )
    return "\n".join(report.table(header, rows, ["---", "---:", "---:", "---:"]))


def main(argv: list[str] | None = None) -> int:
    parser = report.parser(__doc__)
    parser.add_argument("--students", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--path", default="/api/ping/")
    parser.add_argument("--repeats", type=int, default=3)
    return report.main(parser.parse_args(argv), run=run, markdown=markdown)


if __name__ == "__main__":
    sys.exit(main())
