"""What the deployment files expose and whom they trust, read from the files themselves:
docker-compose.yml (as `docker compose config` renders it), the Procfile and the Kubernetes
manifests (as test_kubernetes.py renders them)."""

from __future__ import annotations

import ipaddress
import re
import subprocess

import pytest
import yaml

from ticketwar.tests.test_deploy import _compose_config
from ticketwar.tests.test_foundation import _settings_process
from ticketwar.tests.test_kubernetes import _one, render
from tools.stack import procfile


@pytest.fixture(scope="module")
def compose() -> dict:
    result = _compose_config(SECRET_KEY="s" * 40, POSTGRES_PASSWORD="p" * 20)
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


# --- Kubernetes pods --------------------------------------------------------------------------


def _pods(objects: list[dict]) -> dict[str, dict]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
    }


def test_pods_run_without_privileges_on_a_read_only_image(objects):
    config = _one(objects, "ConfigMap", "ticketwar-config")["data"]
    # Every place the processes write (metric files, beat's schedule, file mail) is on a volume.
    written = [config["PROMETHEUS_MULTIPROC_DIR"], config["CELERY_BEAT_SCHEDULE_FILE"], config["EMAIL_FILE_PATH"]]
    for name, pod in _pods(objects).items():
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        empty_dirs = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = (name, container["name"])
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["readOnlyRootFilesystem"] is True, where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in empty_dirs, where  # noqa: S108 - Python's and Django's temporary files
            for path in written:
                assert any(path.startswith(f"{mount}/") or path == mount for mount in mounts), (where, path)


# --- Kubernetes network policy ----------------------------------------------------------------


def _selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In/NotIn/Exists) on ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and expression["key"] not in labels:
            return False
    return True


def _peer_allowed(peer: dict, *, source_namespace: dict, source_pod: dict, same_namespace: bool) -> bool:
    if "ipBlock" in peer:
        return False  # no pod of the cluster is named by an address block here
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], source_namespace):
            return False
    elif not same_namespace:
        return False  # a podSelector alone means pods of the policy's own namespace
    return _selects(peer.get("podSelector", {}), source_pod)


def reachable(objects, target: dict, *, source_pod: dict, source_namespace: str = "ticketwar") -> bool:
    """Whether a pod labelled ``source_pod`` in ``source_namespace`` may connect to a pod of the
    ticketwar namespace labelled ``target`` (ingress rules; ports not considered)."""
    policies = [o for o in objects if o["kind"] == "NetworkPolicy" and _selects(o["spec"]["podSelector"], target)]
    if not policies:
        return True  # not isolated
    namespace = {"kubernetes.io/metadata.name": source_namespace}
    return any(
        _peer_allowed(
            peer, source_namespace=namespace, source_pod=source_pod, same_namespace=source_namespace == "ticketwar"
        )
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
    )


def app(component: str) -> dict:
    return {"app.kubernetes.io/name": "ticketwar", "app.kubernetes.io/component": component}


INGRESS_CONTROLLER = ({"app.kubernetes.io/name": "ingress-nginx"}, "ingress-nginx")
PROMETHEUS = ({"app.kubernetes.io/name": "prometheus"}, "monitoring")
STRANGER = ({"app": "debug-shell"}, "ticketwar")
ELSEWHERE = ({"app": "some-tool"}, "default")


def test_every_pod_of_the_namespace_is_isolated(objects):
    for workload in (o for o in objects if o["kind"] in {"Deployment", "Job"}):
        name, labels = workload["metadata"]["name"], workload["spec"]["template"]["metadata"]["labels"]
        assert not reachable(objects, labels, source_pod=STRANGER[0]), name
        assert not reachable(objects, labels, source_pod=ELSEWHERE[0], source_namespace=ELSEWHERE[1]), name


@pytest.mark.parametrize(
    ("target", "source", "allowed"),
    [
        ("web", INGRESS_CONTROLLER, True),
        ("ws", INGRESS_CONTROLLER, True),
        ("web", PROMETHEUS, True),  # /metrics
        ("web", (app("worker"), "ticketwar"), False),
        ("ws", STRANGER, False),
        ("web", ({"app.kubernetes.io/name": "ingress-nginx"}, "default"), False),  # a look-alike elsewhere
        ("worker", INGRESS_CONTROLLER, False),
        ("beat", INGRESS_CONTROLLER, False),
        ("postgres", (app("web"), "ticketwar"), True),
        ("redis", (app("worker"), "ticketwar"), True),
        ("redis", (app("beat"), "ticketwar"), True),
        ("pgbouncer", (app("migrate"), "ticketwar"), True),
        ("postgres", INGRESS_CONTROLLER, False),
        ("redis", STRANGER, False),
        ("redis", ELSEWHERE, False),
        ("postgres", (app("web"), "other-team"), False),  # the same labels in another namespace
    ],
)
def test_only_the_ingress_reaches_web_and_ws_and_only_the_app_the_data(objects, target, source, allowed):
    labels = app(target) if target in {"web", "ws", "worker", "beat"} else {"app.kubernetes.io/component": target}
    pod, namespace = source
    assert reachable(objects, labels, source_pod=pod, source_namespace=namespace) is allowed


# --- secrets ------------------------------------------------------------------------------------


def test_the_repository_ships_no_secret_values(objects):
    from tools.testing import ROOT

    kustomization = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        kinds = {d["kind"] for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / resource).read_text()) if d}
        assert "Secret" not in kinds, resource
    for generator in kustomization["secretGenerator"]:
        for name in generator["envs"]:
            ignored = subprocess.run(["git", "check-ignore", "-q", f"deploy/kubernetes/{name}"], cwd=ROOT, check=False)
            assert ignored.returncode == 0, f"deploy/kubernetes/{name} is not ignored by git"


SECRET_NAMES = {
    "SECRET_KEY": "SECRET_KEY",
    "DATABASE_URL": "DATABASE_URL",
    "DATABASE_POOLED_URL": "DATABASE_URL",  # web and ws get it as their DATABASE_URL
    "REDIS_URL": "REDIS_URL",
    "EMAIL_HOST_PASSWORD": "EMAIL_HOST_PASSWORD",
    "ALERT_WEBHOOK_SECRET": "ALERT_WEBHOOK_SECRET",
    "METRICS_TOKEN": "METRICS_TOKEN",
}


@pytest.mark.parametrize("key", sorted(SECRET_NAMES))
def test_production_refuses_the_shipped_example_secrets(objects, key):
    example = _one(objects, "Secret", "ticketwar-secrets")["stringData"][key]
    assert example
    good = {"TICKETWAR_ENV": "production", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "t.example.org",
            "SITE_URL": "https://t.example.org"}  # fmt: skip
    result = _settings_process(**{**good, SECRET_NAMES[key]: example})
    assert result.returncode != 0
    assert f"{SECRET_NAMES[key]} still holds the example's placeholder" in result.stderr
