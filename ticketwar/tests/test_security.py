"""Production behind TLS: HSTS, the HTTPS redirect (not for probes), secure cookies, the
Content-Security-Policy, an absolute SITE_URL, and ``check --deploy`` without a warning."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        {
            "TICKETWAR_ENV": "production",
            "DEBUG": "",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "tickets.example.ac.id",
            "SITE_URL": "https://tickets.example.ac.id",
            **extra,
        }
    )
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "ticketwar.settings"},
        capture_output=True,
        text=True,
        check=False,
    )


def production_settings(**extra: str) -> dict:
    names = [
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT",
        "SECURE_REDIRECT_EXEMPT", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "CONTENT_SECURITY_POLICY", "SITE_URL",
    ]  # fmt: skip
    result = run_python(
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}, default=list))",
        production_env(**extra),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_has_no_warnings_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no issues" in result.stdout


def test_production_defaults_are_safe():
    values = production_settings()
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    # The X-Forwarded-Proto header is believed only when the proxy is declared to set it.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    directives = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]


def test_settings_come_from_the_environment():
    values = production_settings(
        SECURE_HSTS_SECONDS="60",
        TRUST_X_FORWARDED_PROTO="true",
        WEBSOCKET_ORIGIN="wss://ws.tickets.example.ac.id/",
    )
    assert values["SECURE_HSTS_SECONDS"] == 60
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["connect-src"] == [
        "'self'",
        "wss://ws.tickets.example.ac.id",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SITE_URL", "", "SITE_URL"),
        ("SITE_URL", "http://tickets.example.ac.id", "SITE_URL"),
        ("WEBSOCKET_ORIGIN", "https://ws.example.ac.id", "WEBSOCKET_ORIGIN"),
    ],
)
def test_production_refuses_unsafe_values(variable, value, message):
    result = run_python("", production_env(**{variable: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.fixture
def tls_settings(settings):
    """The production security settings on the test process (the middleware reads them per client)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.mark.django_db
def test_plain_http_is_redirected_except_probes_and_scrapes(client, tls_settings):
    response = client.get("/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/"
    assert client.get("/healthz").status_code in (200, 503)  # answered, not redirected
    assert client.get("/metrics").status_code != 301
    # Behind the proxy that says the client used HTTPS: answered, with HSTS.
    response = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.django_db
def test_pages_and_the_api_carry_the_content_security_policy(client, event):
    for path in ("/", f"/events/{event.slug}/", "/accounts/login/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert "unsafe-inline" not in policy
    # JSON loads and runs nothing, and nobody frames it: the strictest policy there is.
    for path in ("/api/events/", f"/api/events/{event.slug}/", "/api/ping/", "/api/no-such-thing/"):
        assert client.get(path)["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'", path
