"""Fixtures of the common tests: every circuit breaker closed before and after each test.

The ``redis_server`` fixture that kills or hangs the run's real Redis is in the root conftest.py.
"""

from __future__ import annotations

import pytest

from tools.testing import reset_redis_state


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_redis_state()
    yield
    reset_redis_state()
