"""The failure drills cannot silently rot: each one runs in ``--quick`` mode against its own stack.

The three drill scripts start side by side (each owns its PostgreSQL, Redis, web, worker and
beat on free ports, so they cannot disturb each other or the test database) and each writes its
figures as JSON; the tests below read them and assert the outcomes: nothing lost or doubled,
every accepted claim decided, the breaker opened and closed, 503s (never 500s) without a
database, the remaining-tickets alert received with a valid signature.
"""

from __future__ import annotations

import pytest

from loadtests.tests.scripts import finish, start_script

DRILLS = ("redis_drill", "worker_db_drill", "queue_volume")
TIMEOUT_SECONDS = 330
# The fixture runs the three drills (about a minute; TIMEOUT_SECONDS at worst) inside the first test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_SECONDS + 180)]


@pytest.fixture(scope="module")
def drills(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("drills")
    running = {
        name: start_script(f"loadtests.drills.{name}", "--quick", "--json", str(out / f"{name}.json"))
        for name in DRILLS
    }
    results = {name: finish(process, TIMEOUT_SECONDS, out / f"{name}.json") for name, process in running.items()}
    return {name: vars(result) for name, result in results.items()}


def _figures(drills: dict, name: str) -> dict:
    result = drills[name]
    assert result["figures"] is not None, result["output"][-3000:]
    return result["figures"]


def _assert_nothing_lost_or_doubled(invariants: dict) -> None:
    assert invariants["tickets"] == min(invariants["capacity"], invariants["claimants"]), invariants
    assert invariants["holders"] == invariants["tickets"], invariants  # one ticket per student
    assert invariants["remaining"] == invariants["capacity"] - invariants["tickets"], invariants
    assert invariants["live_entries"] == 0, invariants  # every entry terminal
    assert invariants["completed_linked"] == invariants["tickets"], invariants
    assert invariants["queue"].get("failed:error", 0) == 0, invariants
    assert invariants["ok"]


def test_redis_drill(drills):
    figures = _figures(drills, "redis_drill")
    _assert_nothing_lost_or_doubled(figures["invariants"])
    claims = figures["claims"]
    assert claims["accepted"] > 0
    assert claims["missing_in_table"] == 0 and claims["undecided"] == 0, claims
    states = [state for _, state in figures["breaker"]]
    assert "open" in states, figures["breaker"]
    assert states[-1] == "closed", figures["breaker"]
    # Redis dead is not an error for the students: no 500 in any window.
    for window in figures["windows"]:
        assert 500 not in {int(code) for code in window["statuses"]}, window
    remaining = [a for a in figures["alerts"] if str(a.get("rule", "")).startswith("remaining_tickets:")]
    assert remaining and all(a["valid_signature"] for a in remaining), figures["alerts"]
    assert drills["redis_drill"]["returncode"] == 0, drills["redis_drill"]["output"][-3000:]


def test_worker_db_drill(drills):
    figures = _figures(drills, "worker_db_drill")
    _assert_nothing_lost_or_doubled(figures["invariants"])
    assert figures["worker"]["processing_seen"] > 0  # killed mid-batch
    assert figures["claims"]["missing_in_table"] == 0 and figures["claims"]["undecided"] == 0
    away = next(w for w in figures["windows"] if w["window"] == "database away")
    statuses = {int(code): n for code, n in away["statuses"].items()}
    assert statuses.get(503, 0) > 0, away
    for window in figures["windows"]:
        assert 500 not in {int(code) for code in window["statuses"]}, window
    assert drills["worker_db_drill"]["returncode"] == 0, drills["worker_db_drill"]["output"][-3000:]


def test_queue_volume(drills):
    figures = _figures(drills, "queue_volume")
    assert len(figures["results"]) == 2
    for result in figures["results"]:
        _assert_nothing_lost_or_doubled(result["invariants"])
        assert result["drain"]["decided"] == result["claims"]
        assert result["invariants"]["claimants"] == result["claims"]
        assert result["worker_processes"] >= 1
    small, large = figures["results"]
    assert small["invariants"]["tickets"] == small["seats"]
    assert small["invariants"]["queue"]["failed:sold_out"] == small["claims"] - small["seats"]
    assert large["invariants"]["tickets"] == large["claims"]
    assert drills["queue_volume"]["returncode"] == 0, drills["queue_volume"]["output"][-3000:]
