"""Running a benchmark the way its docs do (``python -m loadtests.<name> --quick``), on its own stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools.stack import ROOT


@pytest.fixture
def quick(tmp_path):
    """``quick(module, *options, timeout=...)`` starts the benchmark; ``.result()`` waits for it and
    returns its record (its return code and output under ``returncode`` and ``output``)."""

    class Run:
        def __init__(self, module: str, *options: str, timeout: float) -> None:
            self.out, self.timeout = tmp_path / f"{module}.json", timeout
            # Its own servers, run as in production: nothing of the test run's settings.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETWAR_", "DJANGO_"))}
            for name in ("DATABASE_URL", "REDIS_URL"):
                env.pop(name, None)
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, "--quick", "--out", str(self.out), *options], cwd=ROOT, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

        def result(self) -> dict:
            try:
                output, _ = self.process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # it stops what it started
                output, _ = self.process.communicate(timeout=60)
            assert self.out.exists(), output[-4000:]
            return {**json.loads(self.out.read_text()), "returncode": self.process.returncode, "output": output}

    return Run
