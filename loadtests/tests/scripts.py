"""Running a benchmark or drill the way its docs do (``python -m loadtests...``), for the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
_TEST_ONLY_ENV = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}


@dataclass
class Result:
    returncode: int
    output: str
    figures: dict | None = None


def start_script(module: str, *args: str) -> subprocess.Popen:
    # The scripts bring their own servers and run the stack as in production, not as under test.
    env = {k: v for k, v in os.environ.items() if k not in _TEST_ONLY_ENV and not k.startswith("TICKETWAR_")}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen, timeout: float, out: Path | None = None) -> Result:
    """Its output and exit code (SIGTERM at ``timeout``: the script stops its stack), and the figures at ``out``."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    figures = json.loads(out.read_text()) if out is not None and out.exists() else None
    return Result(process.returncode, output, figures)


def run_script(module: str, *args: str, timeout: float, out: Path | None = None) -> Result:
    return finish(start_script(module, *args), timeout, out)


def run_quick(module: str, tmp: Path, timeout: float) -> Result:
    """``module --quick --json``: its figures must be there."""
    out = tmp / "figures.json"
    result = run_script(module, "--quick", "--json", str(out), timeout=timeout, out=out)
    assert result.figures is not None, result.output[-4000:]
    return result
