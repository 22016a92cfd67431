"""The floor benchmark cannot silently rot: a small run against its own stack."""

from __future__ import annotations

import json

import pytest

from loadtests.tests.scripts import run_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_floor_measures_the_bare_view_the_api_both_spikes_and_the_crowd(tmp_path):
    out = tmp_path / "floor.json"
    result = run_script("loadtests.floor", "--quick", "--json", str(out), timeout=280)
    assert result.returncode == 0, result.output[-3000:]
    figures = json.loads(out.read_text())
    runs = figures["runs"]
    assert list(runs) == ["bare", "ping", "event", "claim"]
    assert "granian" in figures["command"] and "ticketwar.wsgi:application" in figures["command"]
    for name, run in runs.items():
        expected = "202" if name == "claim" else "200"
        assert run["requests"] > 0 and run["codes"] == {expected: run["requests"]}, (name, run)
        assert run["cpu_ms_per_request"] > 0 and run["ratio"] > 0
    assert runs["bare"]["ratio"] == 1.0
    assert runs["claim"]["requests"] == 60  # every student claimed once, none twice
    assert [(s["students"], s["connections"]) for s in figures["spikes"]] == [(30, "kept-alive"), (30, "new")]
    for spike in figures["spikes"]:
        assert spike["requests"] == 30 and set(spike["statuses"]) <= {"202", "410"}, spike
        assert spike["database"]["ok"], spike
        assert spike["web_cpu_ms_per_claim"] > 0
    # The crowd: 30 students holding 3 connections each (2 idle), straight to web and through nginx.
    assert [(c["via"], c["connections"]) for c in figures["crowd"]] == [("granian", 90), ("nginx", 90)]
    for crowd in figures["crowd"]:
        assert crowd["idle_connections"] == {"open": 60} and crowd["requests"] == 30, crowd
        assert set(crowd["statuses"]) <= {"202", "410"} and crowd["database"]["ok"], crowd
    assert "| bare Django view" in result.output  # the markdown table for docs/BENCHMARKS.md
