"""No import cycles in the app code, between modules or between apps (tools/import_cycles.py
reads the source with ``ast``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "import_cycles.py"

_spec = importlib.util.spec_from_file_location("import_cycles", TOOL)
import_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_cycles)

# None left: a cycle found here is a design to untangle, not an exception to list.
KNOWN: list[list[str]] = []


def test_no_cycle_among_module_level_imports():
    assert import_cycles.cycles(import_cycles.graph()) == []


def test_no_cycle_even_through_imports_inside_functions():
    """An import inside a function hides a cycle from Python, not from the design: the services,
    tasks, deciding, draw and waiting-list modules must not need one to load."""
    found = import_cycles.cycles(import_cycles.graph(deferred=True))
    assert [cycle for cycle in found if cycle not in KNOWN] == []


def test_the_apps_form_layers():
    """Between apps, any import counts (inside functions too): each app uses only those below it."""
    apps = import_cycles.app_graph(import_cycles.graph(deferred=True))
    assert import_cycles.cycles(apps) == []
    # The floors the README's architecture names, bottom up: each may use only those before it.
    floors = ["common", "accounts", "events", "tickets", "queueing", "waitlist", "claims", "monitoring", "ticketwar"]
    for index, app in enumerate(floors):
        assert apps[app] <= set(floors[:index]), (app, apps[app] - set(floors[:index]))


def test_the_tool_sees_the_modules_and_their_imports():
    edges = import_cycles.graph(deferred=True)
    assert "queueing.deciding" in edges["queueing.processing"]
    assert "tickets.policy" in edges["tickets.services"]
    assert "queueing.tasks" not in edges["queueing.services"]  # the kick names the task
    assert "waitlist.standing -> tickets.policy" in import_cycles.app_edges(edges)["waitlist"]["tickets"]


def test_the_tool_reports_a_cycle_and_exits_non_zero():
    assert import_cycles.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles.cycles({"a": {"b"}, "b": set()}) == []
    # No cycle between these modules, but one between their apps.
    modules = {"x.one": {"y.one"}, "y.one": set(), "y.two": {"x.two"}, "x.two": set()}
    assert import_cycles.cycles(modules) == []
    assert import_cycles.cycles(import_cycles.app_graph(modules)) == [["x", "y"]]
    run = subprocess.run([sys.executable, str(TOOL), "--all"], capture_output=True, text=True, check=False)
    assert run.returncode == (1 if KNOWN else 0)
    assert run.stdout.splitlines() == [" <-> ".join(cycle) for cycle in KNOWN]
