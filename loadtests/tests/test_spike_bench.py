"""The web-server spike benchmark cannot silently rot: a small run against its own stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
_TEST_ONLY_ENV = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_spike_bench_compares_two_web_servers_and_checks_the_invariant(tmp_path):
    out = tmp_path / "spike.json"
    env = {k: v for k, v in os.environ.items() if k not in _TEST_ONLY_ENV and not k.startswith("TICKETWAR_")}
    uvicorn = "python -m uvicorn ticketwar.asgi:application --host 127.0.0.1 --port $PORT --no-access-log"
    result = subprocess.run(
        [
            sys.executable, str(ROOT / "loadtests" / "spike_bench.py"), "--students", "40", "--seats", "15",
            "--seconds", "1", "--connections", "4", "--out", str(out),
            "--web", f"one-thread=WEB_THREADS=1 {uvicorn} --workers 1",
            "--web", f"default={uvicorn} --workers 2",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    figures = json.loads(out.read_text())
    assert [run["name"] for run in figures["runs"]] == ["one-thread", "default"]
    for run in figures["runs"]:
        spike = run["spike"]
        # Every claim answered by the contract: queued (202) or sold out (410), nothing else.
        assert spike["requests"] == 40 and set(spike["statuses"]) <= {"202", "410"}, spike
        assert spike["statuses"].get("202", 0) >= 15, spike
        database = run["database"]
        assert database["tickets"] == database["holders"] == 15 and database["left_undecided"] == 0, database
        assert database["invariant_held"]
        assert all(read["codes"] == {"200": read["requests"]} and read["requests"] > 0 for read in run["reads"])
        # The floor: every student's ping answered, on its own connection.
        for phase in ("first_contact", "ping_spike"):
            assert run[phase]["statuses"] == {"200": 40} and run[phase]["requests"] == 40, run[phase]
            assert run[phase]["web_cpu_ms_per_request"] > 0
        assert run["cpu_seconds"]["web"] > 0 and spike["web_cpu_ms_per_claim"] > 0
