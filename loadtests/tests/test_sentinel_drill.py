"""The Sentinel drill in ``--quick`` form: the Redis primary killed under load, the replica
promoted, and every Redis role (cache, rate limits, broker, channel layer) following it."""

from __future__ import annotations

import pytest

from loadtests.tests.scripts import run_quick

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict:
    return run_quick("loadtests.drills.sentinel_drill", tmp_path_factory.mktemp("sentinel"), 270).figures


def test_the_replica_is_promoted_within_seconds(figures):
    assert 0 < figures["without_primary_s"] < 15, figures["without_primary_s"]


def test_nothing_lost_or_doubled_and_every_accepted_claim_decided(figures):
    for truth in (figures["invariants"], figures["probe_invariants"]):
        assert truth["ok"], truth
        assert truth["holders"] == truth["tickets"] == min(truth["capacity"], truth["claimants"]), truth
    assert figures["claims"]["missing_in_table"] == 0, figures["claims"]
    assert figures["claims"]["undecided"] == 0, figures["claims"]


def test_reads_and_claims_continue_on_the_new_primary(figures):
    assert figures["claims_accepted_after_switch"] > 0
    after = {w["window"]: w for w in figures["windows"]}
    for name in ("first 10 s on the new primary", "rest"):
        if name in after:
            assert after[name]["errors"] == 0, after[name]
            assert not after[name]["statuses"].get("500"), after[name]
    assert all(w["requests"] > 0 for w in figures["windows"]), figures["windows"]


def test_pushes_and_rate_limits_follow_the_new_primary(figures):
    pushes = figures["probes"]["pushes"]
    assert pushes and all(p["pushed"] == "completed" for p in pushes), pushes
    limited = figures["probes"]["rate_limited"]
    assert limited and all(statuses[-1] == 429 for statuses in limited), limited
    assert figures["ok"]
