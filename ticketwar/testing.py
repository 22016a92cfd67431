"""Helpers shared by the tests and the test fixtures (conftest.py): ports, subprocess
environments, the Procfile's command lines, live mail and stopping processes.

Plain functions, no fixtures: tests import them from here, never from conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from ticketwar.devservices import free_port  # noqa: F401 - the tests take it from here

ROOT = Path(__file__).resolve().parent.parent


def subprocess_env(settings_dict: dict, **extra: str) -> dict[str, str]:
    """Environment for a server or worker subprocess that must use the test database."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": database_url_for(settings_dict), "PYTHONUNBUFFERED": "1", **extra})
    return env


def database_url_for(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


def door_open_times() -> dict:
    """Event times for a claim window open now and a door open now (it starts within the hour),
    so a test can issue a ticket the real way and check it in."""
    now = timezone.now()
    return {
        "claim_opens_at": now - timedelta(minutes=1),
        "claim_closes_at": now + timedelta(minutes=30),
        "starts_at": now + timedelta(hours=1),
    }


def stop_processes(processes: list[subprocess.Popen], *, timeout: float) -> None:
    """Terminate every process, then kill those still running after ``timeout`` seconds."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_live_mail(mail_dir: Path) -> list[str]:
    """The messages the live server sent, oldest first."""
    return [p.read_text() for p in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)]


def procfile_command(name: str) -> str:
    """The Procfile's command line of process ``name`` (web, ws, worker, beat)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, sep, command = line.partition(":")
        if sep and process.strip() == name:
            return command.strip()
    raise KeyError(f"no {name} process in the Procfile")


def cached_db_session(user) -> str:
    """A logged-in session for ``user`` written by Django's own ``cached_db`` engine (as the
    login form leaves one, or as sessions made before ``ticketwar.lib.sessions`` look); its key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore

    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "ticketwar.lib.auth.CachedNimOrEmailBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    session.create()
    return session.session_key


def start_procfile_process(name: str, settings_dict: dict, **env: str) -> subprocess.Popen:
    """Start the Procfile's process ``name`` on the test database, in its own process group,
    with the virtualenv's ``python`` first on PATH (as under ``make run``)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = ["bash", "-c", procfile_command(name)]
    return subprocess.Popen(  # noqa: S603 - the Procfile's own command line
        command, cwd=ROOT, env=subprocess_env(settings_dict, PATH=path, **env), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
