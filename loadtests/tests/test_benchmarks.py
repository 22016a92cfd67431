"""The benchmarks cannot silently rot: each runs small, end to end, on a stack of its own.

The opening (Locust), the queue and the websockets run side by side (each owns its servers on free
ports); the floor runs alone. What they measure is not judged here (the machine is shared), only
that every part ran and that the database's truth held.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_the_opening_the_queue_and_the_websockets(quick):
    runs = [quick(module, timeout=300) for module in ("loadtests.run", "loadtests.queue_bench", "loadtests.ws_bench")]
    opening, queue, sockets = (run.result() for run in runs)

    f = opening["figures"]
    assert opening["returncode"] == 0, opening["output"][-3000:]
    assert f["logged_in"] == f["users"] == 20  # every student logged in with the form
    assert set(f["claim_statuses"]) <= {"202", "410"} and sum(f["claim_statuses"].values()) == 20, f
    assert f["truth"]["ok"] and f["truth"]["tickets"] == f["capacity"], f["truth"]
    assert f["unexpected_count"] == 0 and f["decision_s"]["decided"] >= f["capacity"], f
    assert "| claims p50 / p95 / max |" in opening["output"]  # its table, as docs/BENCHMARKS.md shows it

    assert queue["returncode"] == 0, queue["output"][-3000:]
    phases = queue["figures"]["phases"]
    assert [p["phase"] for p in phases] == ["paced", "burst", "volume", "volume"]
    for phase in phases:
        assert phase["truth"]["ok"], phase
        assert phase["truth"]["tickets"] == min(phase["seats"], phase["claims"])
    assert phases[2]["decisions"]["decided"] == phases[2]["claims"] == 300  # the backlog, every claim decided

    f = sockets["figures"]
    assert sockets["returncode"] == 0, sockets["output"][-3000:]
    assert f["opened"] == f["delivered"] == f["sockets"] == 40, f  # every decision heard by push
    assert f["handshake_failures"] == 0


def test_the_floor_its_spikes_and_the_crowd(quick, settings):
    record = quick("loadtests.floor", timeout=400).result()
    f = record["figures"]
    assert record["returncode"] == 0, record["output"][-3000:]
    assert list(f["reads"]) == ["bare", "ping", "event", "claim"]
    for name, measured in f["reads"].items():
        assert measured["codes"] == {"202" if name == "claim" else "200": measured["requests"]}, (name, measured)
        assert measured["cpu_ms_per_request"] > 0
    assert f["reads"]["claim"]["requests"] == 60  # every student claimed once, none twice
    assert f["reads"]["ping"]["ratio"] > 1 == f["reads"]["bare"]["ratio"]
    assert [row[0] for row in f["middleware"]] == ["(none)", *settings.MIDDLEWARE]  # the bill misses none
    assert [(s["students"], s["connections"]) for s in f["spikes"]] == [(30, "kept-alive"), (30, "new")]
    # The crowd: 30 students holding 3 connections each (2 idle), straight to web and through nginx.
    assert [(c["via"], c["students"] * c["per_student"]) for c in f["crowd"]] == [("granian", 90), ("nginx", 90)]
    for spike in f["spikes"] + f["crowd"]:
        assert spike["truth"]["ok"] and set(spike["statuses"]) <= {"202", "410"}, spike
        assert sum(spike["statuses"].values()) == 30, spike  # each student answered once
    for crowd in f["crowd"]:
        assert crowd["warm_ups"] == {"warm-up 200": 60}, crowd  # every idle connection open and used once


@pytest.mark.browser
def test_the_door_online_offline_its_list_and_its_sync(quick):
    record = quick("loadtests.door_bench", timeout=300).result()
    f = record["figures"]
    assert record["returncode"] == 0, record["output"][-3000:]
    # Every scan admitted (the bench asserts each answer): 5 by one phone, then 5 by each of four.
    assert [(r["phones"], len(r["latencies"])) for r in f["online"]] == [(1, 5), (4, 20)]
    assert [(r["way"], len(r["latencies"])) for r in f["page"]] == [("online", 5), ("offline", 5)]
    assert [r["tickets"] for r in f["lists"]] == [20, 50]
    assert f["lists"][1]["bytes"] > f["lists"][0]["bytes"] > f["lists"][0]["empty_delta_bytes"]
    assert [r["admitted"] for r in f["sync"]] == [20, 20]  # a retried batch is answered as the first was
