"""The deployment files stay valid: docker-compose.yml and the Procfile."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.stack import procfile

ROOT = Path(__file__).resolve().parents[2]


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    raise AssertionError("neither `docker compose` nor `docker-compose` is installed (`make test` installs it)")


def _compose_config(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_docker_compose_file_is_valid():
    result = _compose_config(SECRET_KEY="s" * 40, POSTGRES_PASSWORD="p" * 20)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) >= {"postgres", "redis", "web", "worker", "beat", "migrate"}
    web_env = config["services"]["web"]["environment"]
    assert web_env["TICKETWAR_ENV"] == "production"
    assert web_env["DATABASE_URL"].startswith("postgres://")
    assert "noeviction" in config["services"]["redis"]["command"]
    assert "beat" in config["services"]["beat"]["command"]


@pytest.mark.parametrize("name", ["SECRET_KEY", "POSTGRES_PASSWORD"])
def test_docker_compose_requires_its_secrets(name):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "POSTGRES_PASSWORD"}}
    env.update({"SECRET_KEY": "s" * 40, "POSTGRES_PASSWORD": "p" * 20})
    del env[name]
    result = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert name in result.stderr


def test_procfile_runs_web_worker_and_one_beat():
    lines = procfile()
    # The names are an interface: process managers, manifests and drills refer to them.
    assert set(lines) == {"web", "ws", "worker", "beat"}
    assert "granian --interface wsgi" in lines["web"] and "ticketwar.wsgi:application" in lines["web"]
    assert "${PORT:-8000}" in lines["web"]
    assert "uvicorn ticketwar.asgi:application" in lines["ws"] and "${WS_PORT:-8001}" in lines["ws"]
    assert "celery -A ticketwar worker" in lines["worker"]
    assert "celery -A ticketwar beat" in lines["beat"]


def _web_command(script: str) -> list[str]:
    """The web process' shell line as it runs: each ``${VAR:-default}`` at its default, ``$$``
    (the escape of compose and Kubernetes) as ``$``, and the address it binds left out."""
    script = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", script.replace("$$", "$"))
    words = shlex.split(script)
    for option in ("--host", "--port"):
        del words[words.index(option) : words.index(option) + 2]
    return words


def test_every_deployment_runs_the_procfiles_web_command():
    """The connection limits and idle time proven by test_web_connections.py hold in every file
    that starts web: the image's default command, docker-compose.yml and the Kubernetes web pods."""
    config = _compose_config(SECRET_KEY="s" * 40, POSTGRES_PASSWORD="p" * 20).stdout
    compose = yaml.safe_load(config)["services"]["web"]["command"]
    dockerfile = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    kubernetes = next(
        doc for doc in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "web.yaml").read_text())
        if doc["kind"] == "Deployment"
    )["spec"]["template"]["spec"]["containers"][0]["command"]  # fmt: skip
    expected = _web_command(procfile()["web"])
    for name, command in (("compose", compose), ("Dockerfile", json.loads(dockerfile[4:])), ("kubernetes", kubernetes)):
        assert command[:2] == ["sh", "-c"], name
        assert _web_command(command[2]) == expected, name
