#!/usr/bin/env python3
"""Recompute a ticketwar pre-queue draw from its published data, using only the standard library.

Usage:
    python tools/verify_draw.py https://tickets.example.ac.id/api/events/<slug>/draw/
    python tools/verify_draw.py draw.json          # the same JSON saved to a file

Checks that sha256(seed) equals the commitment published before opening, then sorts the
pseudonyms by sha256(seed + pseudonym) and compares with the published order.
Exit status 0 when both match, 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.request


def recompute(seed: str, entries: list[str]) -> list[str]:
    return sorted(entries, key=lambda p: (hashlib.sha256((seed + p).encode()).hexdigest(), p))


def verify(draw: dict) -> list[str]:
    """Problems found (an empty list means the draw checks out)."""
    if not draw.get("seed"):
        return ["the seed has not been revealed yet"]
    problems = []
    if hashlib.sha256(draw["seed"].encode()).hexdigest() != draw["commitment"]:
        problems.append("sha256(seed) does not match the published commitment")
    if recompute(draw["seed"], draw["entries"]) != draw["entries"]:
        problems.append("the published order is not the order the seed gives")
    return problems


def load(source: str) -> dict:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - the user's own URL
            return json.load(response)
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    draw = load(argv[1])
    problems = verify(draw)
    for position, pseudonym in enumerate(recompute(draw.get("seed") or "", draw.get("entries", [])), 1):
        print(f"{position:>6}  {pseudonym}")
    if problems:
        for problem in problems:
            print(f"MISMATCH: {problem}", file=sys.stderr)
        return 1
    print(f"OK: {len(draw['entries'])} entries, seed matches commitment, order recomputed.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
