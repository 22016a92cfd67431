"""The fault drill, quick: a small war under every kind of fault once, then the invariants.

One run (about a minute and a half on two idle cores) with a fixed seed, so a failure here replays
with ``python -m loadtests.faults --quick --seed 25``.
"""

from __future__ import annotations

import pytest

from loadtests.faults import FAULTS, schedule

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
SEED = 25


def test_a_war_under_every_fault_keeps_every_invariant(quick):
    record = quick("loadtests.faults", "--seed", str(SEED), timeout=360).result()
    f = record["figures"]
    # The schedule the seed names, every kind of fault once, each applied and healed by the drill.
    applied = [(h["fault"], h["target"], h["seconds"]) for h in f["history"]]
    assert applied == [(s["fault"], s["target"], s["seconds"]) for s in schedule(SEED, True, f["lease"])]
    assert sorted(kind for kind, _, _ in applied) == sorted(FAULTS)
    assert f["checks"] and all(f["checks"].values()), (f["checks"], f["violations"])
    assert f["truth"]["tickets"] == f["seats"] < f["students"]  # sold out, to the seat
    assert f["accepted"] >= f["seats"]
    assert record["returncode"] == 0, record["output"][-4000:]
