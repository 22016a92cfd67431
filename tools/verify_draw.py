#!/usr/bin/env python3
"""Check a ticketwar pre-queue draw from its published data alone, with Python's standard library.

Usage:
    python tools/verify_draw.py DRAW [--saved EARLIER] [--commitment HEX] [--freeze-hash HEX] [--queue-id ID]

DRAW is the draw's address (https://.../api/events/<slug>/draw/) or that JSON saved to a file.
EARLIER is the same data as you saved it before the draw (after the freeze): the check then
also proves that nothing fixed by then changed afterwards. --commitment and --freeze-hash take
the two values if you only wrote those down. --queue-id (your queue page's address ends with it)
finds your pseudonym and your rank.

It checks, in order: the frozen list is sorted and its hash matches the freeze hash (which also
covers the commitment and the announced source and time of the public random value); what was
saved earlier matches; the public value was due, and entered, after the freeze; SHA-256 of the
revealed seed is the commitment; and the published order is the one the seed and the public
value give. What it cannot check for you: that the value is the one the named source published
(look it up there) and that the list was frozen before that value was known (you saw the freeze
before the announced time). Exit status 0 when everything checks out, 1 on any mismatch, 3 when
the draw is not made yet (what can be checked so far is checked), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sys
import urllib.request
import uuid
from datetime import datetime

SCHEME = "ticketwar draw v2"
PSEUDONYM = re.compile(r"^[0-9a-f]{12}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def freeze_hash(draw: dict) -> str:
    entries = draw.get("entries") or []
    lines = [
        SCHEME,
        f"commitment {draw.get('commitment') or ''}",
        f"beacon-source {draw.get('beacon_source') or ''}",
        f"beacon-due {draw.get('beacon_due_at') or ''}",
        f"entries {len(entries)}",
        *entries,
    ]
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


def order(seed: str, frozen_hash: str, beacon: str, entries: list[str]) -> list[str]:
    key = hmac.new(seed.encode("ascii"), f"{SCHEME}\n{frozen_hash}\n{beacon}".encode(), hashlib.sha256).digest()
    return sorted(entries, key=lambda p: (hmac.new(key, p.encode("ascii"), hashlib.sha256).hexdigest(), p))


def legacy_order(seed: str, entries: list[str]) -> list[str]:
    return sorted(entries, key=lambda p: (hashlib.sha256((seed + p).encode()).hexdigest(), p))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _after(later: str | None, earlier: str | None) -> bool:
    return bool(later and earlier) and _when(later) > _when(earlier)


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, ok: bool, what: str) -> bool:
        print(f"{'ok' if ok else 'MISMATCH'}: {what}", file=sys.stderr)
        if not ok:
            self.problems.append(what)
        return ok


def verify(draw: dict, *, saved: dict | None = None, commitment: str = "", frozen: str = "") -> tuple[list[str], bool]:
    """``(problems, drawn)``: every mismatch found, and whether the draw is made yet."""
    report = Report()
    if draw.get("scheme") == 1:
        print("note: a draw made before the freeze and the public value existed (scheme 1)", file=sys.stderr)
        report.check(
            hashlib.sha256(draw["seed"].encode()).hexdigest() == draw["commitment"], "sha256(seed) = commitment"
        )
        report.check(legacy_order(draw["seed"], draw["entries"]) == draw["order"], "order = the seed's order")
        return report.problems, True
    report.check(draw.get("scheme") == 2, "a draw of scheme 2 (freeze, public random value, seed)")
    report.check(bool(HEX64.match(draw.get("commitment") or "")), "the commitment is a SHA-256")
    if commitment:
        report.check(draw.get("commitment") == commitment.lower(), "the commitment is the one you wrote down")
    if not draw.get("frozen_at"):
        print("not frozen yet: the pre-queue is frozen when the claim window opens", file=sys.stderr)
        return report.problems, False
    entries = draw.get("entries") or []
    report.check(all(PSEUDONYM.match(p) for p in entries), "every pseudonym is 12 hex digits")
    report.check(entries == sorted(entries), "the frozen list is sorted")
    report.check(
        freeze_hash(draw) == draw.get("freeze_hash"), "the frozen list, commitment and source match the freeze hash"
    )
    if frozen:
        report.check(draw.get("freeze_hash") == frozen.lower(), "the freeze hash is the one you wrote down")
    if saved is not None:
        report.check(not saved.get("seed"), "the saved copy was taken before the draw")
        for key in ("commitment", "beacon_source", "beacon_due_at", "frozen_at", "entries", "freeze_hash"):
            report.check(saved.get(key) == draw.get(key), f"{key} is unchanged since you saved it")
    due, frozen_at = draw.get("beacon_due_at"), draw.get("frozen_at")
    report.check(
        bool(draw.get("beacon_source")) and bool(due), "a source and a time were announced for the public value"
    )
    report.check(_after(due, frozen_at), "the public value was due after the freeze")
    if not draw.get("beacon"):
        print("no public random value yet: nobody can compute the order before it exists", file=sys.stderr)
        return report.problems, False
    entered = draw.get("beacon_entered_at")
    in_time = not _after(frozen_at, entered) and not _after(due, entered)
    report.check(bool(entered) and in_time, "the public value was entered after the freeze, once due")
    if not draw.get("seed"):
        print("the draw follows within seconds: the seed is revealed with the order", file=sys.stderr)
        return report.problems, False
    report.check(hashlib.sha256(draw["seed"].encode()).hexdigest() == draw["commitment"], "sha256(seed) = commitment")
    report.check(
        order(draw["seed"], draw.get("freeze_hash") or "", draw["beacon"], entries) == draw.get("order"),
        "the published order is the one the seed and the public value give",
    )
    print(f"look up at the source: {draw.get('beacon_source')} -> {draw['beacon']}", file=sys.stderr)
    return report.problems, True


def load(source: str) -> dict:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - the user's own URL
            return json.load(response)
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Check a ticketwar pre-queue draw from its published data.")
    parser.add_argument("draw", help="the draw's address or a saved copy of its JSON")
    parser.add_argument("--saved", help="the same data saved before the draw (address or file)")
    parser.add_argument("--commitment", default="", help="the commitment as you wrote it down")
    parser.add_argument("--freeze-hash", default="", help="the freeze hash as you wrote it down")
    parser.add_argument("--queue-id", default="", help="your queue id: shows your pseudonym and rank")
    args = parser.parse_args(argv[1:])
    draw = load(args.draw)
    problems, drawn = verify(
        draw,
        saved=load(args.saved) if args.saved else None,
        commitment=args.commitment,
        frozen=args.freeze_hash,
    )
    listed = draw.get("order") if drawn else draw.get("entries")
    for position, pseudonym in enumerate(listed or [], 1):
        print(f"{position:>6}  {pseudonym}" if drawn else f"     -  {pseudonym}")
    if args.queue_id:
        mine = hashlib.sha256(str(uuid.UUID(args.queue_id)).encode("ascii")).hexdigest()[:12]
        if mine in (listed or []):
            where = f"rank {listed.index(mine) + 1}" if drawn else "in the frozen list"
        else:
            where = "NOT in the list" if draw.get("frozen_at") or drawn else "the list is not frozen yet"
        print(f"your pseudonym {mine}: {where}", file=sys.stderr)
    if problems:
        print(f"MISMATCH: {len(problems)} check(s) failed", file=sys.stderr)
        return 1
    if not drawn:
        return 3
    print(f"OK: {len(listed)} entries; every step checks out.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
