"""tools/stack.py stops what it started, even a process that is not the leader of its own group."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tools import stack

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("own_group", [True, False])
def test_stop_ends_a_process_that_ignores_sigterm_whatever_its_group(own_group):
    """Locust was started in the load test's own process group: SIGTERM to its "group" went nowhere
    and the SIGKILL after it too, so an interrupted load test waited for Locust forever."""
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=own_group
    )  # fmt: skip
    assert process.stdout.readline() == b"1\n"  # its handler is in place
    started = time.monotonic()
    stack.stop(process, timeout=1)
    assert process.returncode is not None and time.monotonic() - started < 10
