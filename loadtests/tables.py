"""The tables of the recorded benchmark runs (``docs/benchmarks/*.json``), as docs/BENCHMARKS.md shows them.

    .venv/bin/python -m loadtests.tables                # every record's tables
    .venv/bin/python -m loadtests.tables floor faults   # those records'
    .venv/bin/python -m loadtests.tables --write        # and into docs/BENCHMARKS.md, between each one's markers

Each record names the module that made it; that module's ``markdown`` prints it. In
docs/BENCHMARKS.md a record's tables stand between ``<!-- record: NAME -->`` and ``<!-- /record -->``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys

from loadtests.harness import RECORDS
from tools.stack import ROOT

BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
BLOCK = re.compile(r"(<!-- record: (?P<name>[\w.-]+) -->\n)(?:.*?\n)??(<!-- /record -->)", re.S)


def tables(name: str) -> str:
    record = json.loads((RECORDS / f"{name}.json").read_text())
    return importlib.import_module(record["module"]).markdown(record)


def written(text: str) -> str:
    """``text`` (docs/BENCHMARKS.md) with every record's block printed afresh."""
    return BLOCK.sub(lambda m: m.group(1) + tables(m.group("name")) + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("names", nargs="*", help="records (default: all)")
    parser.add_argument("--write", action="store_true", help="rewrite their blocks in docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    for name in args.names or sorted(path.stem for path in RECORDS.glob("*.json")):
        print(tables(name), end="\n\n")
    if args.write:
        BENCHMARKS.write_text(written(BENCHMARKS.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
