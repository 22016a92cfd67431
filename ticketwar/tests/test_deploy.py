"""The deployment files stay valid: docker-compose.yml and the Procfile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.testing import procfile

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
