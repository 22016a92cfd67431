"""Settings that a typo or a placeholder would turn into a quiet hole stop the start instead."""

from __future__ import annotations

import pytest

from ticketwar.tests.test_foundation import _settings_process


@pytest.mark.parametrize("value", ["10.0.0.300", "10.0.0.1, nginx", "10.0.0.1/33", "192.168.1.5/24"])
def test_a_mistyped_trusted_proxy_stops_the_start(value):
    """Parsed once at start-up, not on every request (where it was a 500 for each one)."""
    result = _settings_process(TRUSTED_PROXIES=value)
    assert result.returncode != 0
    assert "TRUSTED_PROXIES must be IP addresses or CIDR networks" in result.stderr


def test_trusted_proxies_take_addresses_and_networks():
    result = _settings_process(TRUSTED_PROXIES="172.28.0.10, 10.20.0.0/24, 2001:db8::/64")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["LOGIN_LIMIT_IP", "SIGNUP_LIMIT_IP"])
@pytest.mark.parametrize("value", ["300", "300/15x", "/m", "300/0m", "١٠٠/h"])
def test_a_mistyped_rate_stops_the_start(name, value):
    result = _settings_process(**{name: value})
    assert result.returncode != 0
    assert f"{name} must look like 300/15m" in result.stderr
