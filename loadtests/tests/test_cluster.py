"""The cluster drill in ``--quick`` mode: two of every replica behind HAProxy, one of each killed.

One run (about a minute on two idle cores) of ``python -m loadtests.drills.cluster``, which brings its
own PostgreSQL, Redis, replicas and HAProxy on free ports; the tests read its figures.
"""

from __future__ import annotations

import pytest

from loadtests.tests.scripts import run_quick

TIMEOUT_SECONDS = 240
pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_SECONDS + 90)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict:
    result = run_quick("loadtests.drills.cluster", tmp_path_factory.mktemp("cluster"), TIMEOUT_SECONDS)
    return {"returncode": result.returncode, "output": result.output, "figures": result.figures}


def test_a_session_made_on_one_web_replica_is_valid_on_the_other(cluster):
    session = cluster["figures"]["session"]
    assert session["login_status_web1"] == 302 and session["session_cookie"], session
    assert session["claim_status_web2"] in (200, 202) and session["entry_owner_is_the_student"], session
    assert session["claim_without_session_web2"] == 401, session


def test_the_claim_rate_limit_counts_across_replicas(cluster):
    limit = cluster["figures"]["rate_limit"]
    statuses = [status for _, status in limit["answers"]]
    assert {replica for replica, _ in limit["answers"]} == {"web1", "web2"}
    # Per replica, each would have allowed three: no 429 at all in six clicks.
    assert [s == 429 for s in statuses] == [False, False, False, True, True, True], limit


def test_sockets_on_every_websocket_replica_hear_a_decision_made_elsewhere(cluster):
    sockets = cluster["figures"]["websockets"]
    assert not sockets["errors"], sockets
    for route, counts in sockets["routes"].items():
        assert counts["sockets"] > 0, route
        # Open while the entry was pending, so the decision arrived by push from the worker.
        assert counts["pending_when_opened"] == counts["decision_pushed"] == counts["sockets"], (route, counts)


def _assert_nothing_lost(war: dict) -> None:
    invariants = war["invariants"]
    assert invariants["ok"], invariants
    assert invariants["tickets"] == min(invariants["capacity"], invariants["claimants"]), invariants
    assert invariants["holders"] == invariants["tickets"], invariants  # one ticket per student
    assert war["claims"]["missing_in_table"] == 0 and war["claims"]["undecided"] == 0, war["claims"]
    assert all(war["sessions_per_replica"][name] > 0 for name in ("web1", "web2")), war["sessions_per_replica"]


def test_the_race_through_the_balancer(cluster):
    race = cluster["figures"]["race"]
    _assert_nothing_lost(race)
    assert race["invariants"]["tickets"] == race["seats"] < race["students"]


def test_a_killed_web_replica_and_worker(cluster):
    kill = cluster["figures"]["kill"]
    _assert_nothing_lost(kill)
    assert kill["processing_at_kill"] > 0  # killed mid-batch
    assert kill["down_at"] is not None and kill["down_at"] - kill["killed_at"] < 10, kill["stats_at_down"]
    assert kill["sent_to_dead_after_down"] == 0
    assert kill["sessions_per_replica"]["web2"] > 0
    assert cluster["returncode"] == 0, cluster["output"][-4000:]
