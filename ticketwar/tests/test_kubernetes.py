"""The Kubernetes manifests (deploy/kubernetes/) are valid and complete, checked offline.

The kustomization is rendered here the simple way (its resources, each file's documents, the
namespace set) and every object is validated against the Kubernetes JSON schemas bundled with
the pinned ``kubernetes-validate`` package, strictly (an unknown field fails). Then what a
schema cannot see: every variable the settings read comes from the ConfigMap or the Secret (or
is listed below as not needed in a cluster, with the reason), the Services find their pods, the
Ingress sends /ws/ to the websocket Service, the probes are the ones docs/DEPLOYMENT.md
describes, and there is exactly one beat.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tools.devservices import free_port as devservices_free_port
from tools.envvars import settings_variables

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests promise to work on (autoscaling/v2, policy/v1 are GA there).
KUBERNETES_VERSION = "1.30"

# Variables a cluster deliberately leaves unset, with the reason.
NOT_IN_CLUSTER = {
    "DATABASE_TEST_NAME": "only the test suite creates a database",
    "PORT": "`make run`'s port; the manifests pass --port 8000 to uvicorn",
    "TICKETWAR_PG_PORT": "ports of the embedded development servers (tools/devservices.py)",
    "TICKETWAR_REDIS_PORT": "ports of the embedded development servers (tools/devservices.py)",
    "TICKETWAR_DATA_DIR": "data folder of the embedded development servers",
    "WS_PORT": "`make run`'s websocket port; the ws pods listen on 8000 behind their own Service",
    "WS_CONCURRENCY": "uvicorn workers of `make run`'s ws process; a ws pod runs one (replicas scale it)",
    "POD_IP": "each web and ws pod's own address, from the downward API in its env (web.yaml, ws.yaml)",
}


def env_file(path: Path) -> dict[str, str]:
    """A kustomize ``envs`` file: KEY=value lines, # comments."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def render() -> list[dict]:
    """kustomization.yaml's resources, in order, then its generated Secrets (from the shipped
    ``.example`` of each untracked env file), with its namespace applied."""
    kustomization = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    # Anything else would be a kustomize feature this renderer does not apply.
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "labels", "resources", "images", "secretGenerator"}
    objects = []
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((KUSTOMIZE_DIR / resource).read_text()):
            if document is None:
                continue
            objects.append(document)
    for generator in kustomization.get("secretGenerator", []):
        assert set(generator) == {"name", "envs"}
        data = {}
        for name in generator["envs"]:
            data.update(env_file(KUSTOMIZE_DIR / f"{name}.example"))
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]}, "type": "Opaque"}
        objects.append({**secret, "stringData": data})
    for document in objects:
        if document["kind"] != "Namespace":
            document["metadata"]["namespace"] = kustomization["namespace"]
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render()


def _one(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_specs(objects: list[dict]) -> dict[str, dict]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
    }


def test_every_manifest_validates_against_the_kubernetes_schemas(objects):
    kinds = {o["kind"] for o in objects}
    assert kinds >= {
        "Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service", "Ingress",
        "HorizontalPodAutoscaler", "PodDisruptionBudget",
    }  # fmt: skip
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.caught.absolute_path)}")


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_variable_comes_from_the_configmap_or_the_secret(objects):
    config = _one(objects, "ConfigMap", "ticketwar-config")["data"]
    secret = _one(objects, "Secret", "ticketwar-secrets")["stringData"]
    assert not set(config) & set(secret), "a variable set twice"
    provided = set(config) | set(secret)
    wanted = settings_variables() | readme_variables()
    missing = sorted(wanted - provided - set(NOT_IN_CLUSTER))
    assert not missing, f"not in the ConfigMap or Secret, nor listed in NOT_IN_CLUSTER: {missing}"
    # No stale entries either: everything provided is read somewhere or documented.
    procfile_variables = set(re.findall(r"\$\{?([A-Z_]+)", (ROOT / "Procfile").read_text()))
    unknown = sorted(provided - wanted - procfile_variables - {"DATABASE_POOLED_URL"})
    assert not unknown, unknown
    # Every pod gets both, and every single reference names a key that exists.
    for name, spec in _pod_specs(objects).items():
        for container in spec.get("initContainers", []) + spec["containers"]:
            sources = {ref.get("configMapRef", ref.get("secretRef", {})).get("name") for ref in container["envFrom"]}
            assert sources == {"ticketwar-config", "ticketwar-secrets"}, (name, container["name"])
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "ticketwar-secrets" and ref["key"] in secret, (name, variable)


def test_services_select_their_pods_and_the_ingress_routes_websockets(objects):
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == {"ticketwar-web", "ticketwar-ws", "ticketwar-worker", "ticketwar-beat"}
    for service in (o for o in objects if o["kind"] == "Service"):
        target = deployments[service["metadata"]["name"]]
        labels = target["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {p["name"] for c in target["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    for deployment in deployments.values():
        assert deployment["spec"]["selector"]["matchLabels"].items() <= (
            deployment["spec"]["template"]["metadata"]["labels"].items()
        )
    routes = {}
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                routes[path["path"]] = (path["backend"]["service"]["name"], ingress["metadata"]["annotations"])
    assert routes["/"][0] == "ticketwar-web"
    assert routes["/ws/"][0] == "ticketwar-ws"
    assert int(routes["/ws/"][1]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(routes["/"][1]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) <= 60


def test_probes_drain_autoscaling_and_exactly_one_beat(objects):
    for name in ("ticketwar-web", "ticketwar-ws"):
        pod = _one(objects, "Deployment", name)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        # Liveness never touches the database or Redis: their outage must not restart pods.
        assert container["livenessProbe"]["httpGet"]["path"].startswith("/static/")
        script = container["readinessProbe"]["exec"]["command"][-1]
        assert "/healthz" in script
        compile(script, "readiness", "exec")
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert pod["terminationGracePeriodSeconds"] > int(container["lifecycle"]["preStop"]["exec"]["command"][1]) + 5
        assert pod["initContainers"][0]["name"] == "wait-for-migrations"
        # Idle connections outlive ingress-nginx's upstream keep-alive (upstream-keepalive-timeout,
        # set to 50 s in the controller, docs/DEPLOYMENT.md), never the reverse.
        command = " ".join(container["command"])
        idle_seconds = {
            "ticketwar-ws": r"--timeout-keep-alive (\d+)",  # uvicorn, in seconds
            "ticketwar-web": r"--http1-header-read-timeout (\d+)",  # granian, in milliseconds
        }
        found = int(re.search(idle_seconds[name], command).group(1))
        assert (found / 1000 if name == "ticketwar-web" else found) > 50
        assert _one(objects, "PodDisruptionBudget", name)["spec"]["minAvailable"] >= 1
    hpa = _one(objects, "HorizontalPodAutoscaler", "ticketwar-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ticketwar-web"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert _one(objects, "Deployment", "ticketwar-web")["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"
    ]["cpu"]  # the HPA's utilisation is relative to the request
    beat = _one(objects, "Deployment", "ticketwar-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in " ".join(beat["spec"]["template"]["spec"]["containers"][0]["command"])
    job = _one(objects, "Job", "ticketwar-migrate")
    assert "migrate" in job["spec"]["template"]["spec"]["containers"][0]["command"]


def _run_probe(script: str, port: int, allowed_hosts: str) -> int:
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    env = {"PATH": os.environ.get("PATH", ""), "ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=30).returncode


def test_the_probes_against_a_real_server(objects, live_asgi_server):
    """Readiness passes on 200 and on 503 (no worker has reported here: /healthz is red), fails
    when nothing answers or Django refuses the Host; liveness is served without the database."""
    port = int(live_asgi_server.rsplit(":", 1)[1])
    container = _one(objects, "Deployment", "ticketwar-web")["spec"]["template"]["spec"]["containers"][0]
    script = container["readinessProbe"]["exec"]["command"][-1]
    with pytest.raises(urllib.error.HTTPError) as healthz:
        urllib.request.urlopen(f"{live_asgi_server}/healthz", timeout=10)  # noqa: S310 - loopback
    assert healthz.value.code == 503
    assert _run_probe(script, port, "localhost,tickets.example.ac.id") == 0
    assert _run_probe(script, port, ".localhost") == 0  # a subdomain wildcard entry
    assert _run_probe(script, port, "tickets.example.ac.id") != 0  # not this server's host: 400
    assert _run_probe(script, devservices_free_port(), "localhost") != 0  # nothing listening
    liveness = container["livenessProbe"]["httpGet"]["path"]
    with urllib.request.urlopen(f"{live_asgi_server}{liveness}", timeout=10) as response:  # noqa: S310
        assert response.status == 200
