"""What the deployment files expose and whom they trust, read from the files themselves:
docker-compose.yml (as `docker compose config` renders it), the Procfile and the Kubernetes
manifests (as test_kubernetes.py renders them)."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from ticketwar.tests.test_deploy import _compose_config
from ticketwar.tests.test_kubernetes import _one, render
from tools.testing import procfile


@pytest.fixture(scope="module")
def compose() -> dict:
    result = _compose_config(SECRET_KEY="s" * 40)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render()


def _networks(value: str) -> list:
    return [ipaddress.ip_network(item.strip()) for item in value.split(",") if item.strip()]


def test_compose_trusts_the_forwarded_for_of_its_nginx_only(compose):
    nginx = compose["services"]["nginx"]
    address = ipaddress.ip_address(nginx["networks"]["default"]["ipv4_address"])
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert address in subnet
    for name in ("web", "ws"):
        trusted = _networks(compose["services"][name]["environment"]["TRUSTED_PROXIES"])
        assert trusted == [ipaddress.ip_network(address)], name  # nginx, not a private range


def test_the_cluster_trusts_a_small_pool_not_the_pod_network(objects):
    config = _one(objects, "ConfigMap", "ticketwar-config")["data"]
    trusted = _networks(config["TRUSTED_PROXIES"])
    assert trusted
    assert all(network.num_addresses <= 256 for network in trusted), trusted


def test_no_websocket_server_believes_forwarded_headers(compose, objects):
    """uvicorn would rewrite the client from X-Forwarded-For (from 127.0.0.1 by default, from
    anyone with --forwarded-allow-ips '*'); the app decides whom to believe (TRUSTED_PROXIES)."""
    commands = {
        "Procfile": procfile()["ws"],
        "docker-compose.yml": " ".join(compose["services"]["ws"]["command"]),
        "deploy/kubernetes/ws.yaml": " ".join(
            _one(objects, "Deployment", "ticketwar-ws")["spec"]["template"]["spec"]["containers"][0]["command"]
        ),
    }
    for where, command in commands.items():
        assert "uvicorn" in command, where
        assert "--no-proxy-headers" in command.split(), where
        assert not re.search(r"--proxy-headers|--forwarded-allow-ips", command), where


def _port(entry) -> tuple[str, int]:
    """``(host address, container port)`` of a published port, long or short syntax."""
    if isinstance(entry, dict):
        return entry.get("host_ip", "0.0.0.0"), int(entry["target"])  # noqa: S104 - compose's default
    parts = entry.split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else "0.0.0.0"), int(parts[-1])  # noqa: S104


def test_compose_publishes_the_internal_listener_on_the_loopback_only(compose):
    published = dict(_port(entry)[::-1] for entry in compose["services"]["nginx"]["ports"])
    assert published[8081] == "127.0.0.1"
    assert set(published) == {80, 8081}
    assert not any("ports" in service for name, service in compose["services"].items() if name != "nginx")
