"""Markdown tables, the sections of docs/BENCHMARKS.md, and the command line every script shares."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

from loadtests.harness.stack import ROOT, machine

BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
SECTIONS = {
    "loadtest": (
        "## Load test",
        "`make loadtest` (= `.venv/bin/python -m loadtests.run`, 500 users) and `.venv/bin/python -m loadtests.run "
        "--users 1000` start their own PostgreSQL, Redis, web, Celery worker and beat with the Procfile's command "
        "lines, run Locust headless with `loadtests/locustfile.py`, then check the database and write the tables "
        "below (each is replaced when its run is repeated).",
    ),
    "drill": (
        "## Failure drills",
        "Scripts in `loadtests/drills/` (`.venv/bin/python -m loadtests.drills.<name>`); each starts its own "
        "PostgreSQL, Redis, web, Celery worker and beat with the Procfile's command lines, breaks something on "
        "purpose, checks the database afterwards, and stops everything it started. `--quick` runs the same drill "
        "with tiny numbers (`loadtests/tests/test_drills.py`).",
    ),
}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def table(header: str, rows: list[str], align: str | list[str] = "---") -> list[str]:
    """A markdown table: ``header`` as ``a | b | c`` (no outer bars), ``rows`` already rendered."""
    aligns = align if isinstance(align, list) else [align] * (header.count("|") + 1)
    return [f"| {header} |", "| " + " | ".join(aligns) + " |", *rows]


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def codes(counts: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()))


def clock(at: float | None, origin: float) -> str:
    return "–" if at is None else f"{time.strftime('%H:%M:%S', time.gmtime(at))} (t{at - origin:+.0f} s)"


def machine_line() -> str:
    """The machine, and how busy it was (the drills share two cores with whatever else runs)."""
    m = machine()
    one, five, _ = os.getloadavg()
    return (
        f"{m['cpus']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, Linux {m['kernel']}; "
        f"load generator, PostgreSQL, Redis, web, worker and beat on the same machine; load average "
        f"{one:.1f} (1 min) / {five:.1f} (5 min) when the drill ended"
    )


def command_line(module: str) -> str:
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", "-m", module, *sys.argv[1:]])


def heading(title: str, command: str) -> list[str]:
    return [title, "", "```", command, "```", ""]


def replace_marked_block(path: Path, *, marker: str, block: str, heading: str, intro: str) -> None:
    """Put ``block`` between ``<!-- {marker}:start -->`` and ``<!-- {marker}:end -->`` in ``path``.

    A block already there is replaced; a new one goes at the end of the section that starts with
    ``heading`` (a second-level heading); without that section, ``intro`` (which starts with the
    heading) and the block are appended to the file.
    """
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    wrapped = f"{start}\n{block.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        text = before + wrapped + rest.partition(end)[2]
    elif heading in text:
        before, _, rest = text.partition(heading)
        # The section ends where the next second-level heading begins.
        match = re.search(r"^## ", rest[1:], flags=re.MULTILINE)
        cut = match.start() + 1 if match else len(rest)
        body, after = rest[:cut].rstrip(), rest[cut:]
        text = before + heading + body + "\n\n" + wrapped + "\n" + ("\n" + after if after else "")
    else:
        text = text.rstrip() + "\n\n" + intro.rstrip() + "\n\n" + wrapped + "\n"
    path.write_text(text)


def update_benchmarks(marker: str, block: str, path: Path | None = None) -> None:
    """Put ``block`` between the markers ``marker`` (``loadtest:<name>``, ``drill:<name>``) of its section."""
    section, intro = SECTIONS[marker.partition(":")[0]]
    replace_marked_block(
        path or BENCHMARKS, marker=marker, block=block, heading=section, intro=f"{section}\n\n{intro}\n"
    )


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark and drill takes; each adds its own numbers."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny numbers (test suite); docs untouched")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the logs of the stack")
    return parser


def main(args, *, run, markdown, section: str = "") -> int:
    """Run, print the report, save the figures and (full runs with a ``section``) update docs/BENCHMARKS.md.

    SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what the run started.
    """

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        figures = run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    text = markdown(figures)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    if section and not args.quick and not args.no_docs:
        update_benchmarks(section, text)
    return 0 if figures.get("ok", True) else 1
