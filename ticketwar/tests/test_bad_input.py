"""Bad input never gets a 500: a corpus of bad bodies and query strings against every JSON
endpoint and every form, as anonymous, student and staff.

Found: 5,000 ``[`` as a JSON body raised RecursionError, a body over Django's
DATA_UPLOAD_MAX_MEMORY_SIZE raised RequestDataTooBig, ``?until=0001-01-01`` overflowed in the
monitoring history: all three were 500s with a stack trace in the error log. The JSON endpoints
are read from the URL conf, so a new one is covered (or fails loudly for want of a sample value
of its path parameter) without editing this file. Requests go through the real CSRF check.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

CSRF_TOKEN = "a" * 32  # a well-formed token: the CSRF check passes, the input is what is tested

# --- the endpoints ----------------------------------------------------------------------------


def _routes(patterns=None, prefix: str = "") -> list[str]:
    patterns = get_resolver().url_patterns if patterns is None else patterns
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append(route)
    return found


JSON_ROUTES = sorted({r for r in _routes() if r.startswith("api/") or r == "healthz"})
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")

# --- the corpus -------------------------------------------------------------------------------

OVER_DJANGO_LIMIT = b"x" * (2_621_440 + 10)  # DATA_UPLOAD_MAX_MEMORY_SIZE + 10
BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not-json", b"not json at all", "application/json"),
    ("truncated", b'{"join": tru', "application/json"),
    ("nested-arrays", b"[" * 5000, "application/json"),
    ("nested-objects", b'{"a":' * 5000, "application/json"),
    ("nested-closed", b"[" * 3000 + b"]" * 3000, "application/json"),
    ("huge", OVER_DJANGO_LIMIT, "application/json"),
    ("large-valid", json.dumps({"code": "A" * 100_000, "join": True}).encode(), "application/json"),
    ("null", b"null", "application/json"),
    ("array", b'[{"join": true}]', "application/json"),
    ("string", b'"ACDEFGHJ"', "application/json"),
    ("number", b"1e999999", "application/json"),
    ("nan", b'{"join": NaN, "code": Infinity}', "application/json"),
    ("wrong-types", b'{"join": "yes", "code": 12345678, "event": ["x"]}', "application/json"),
    ("nulls", b'{"join": null, "code": null, "event": null}', "application/json"),
    ("nested-values", b'{"join": {"$ne": false}, "code": {"$gt": ""}}', "application/json"),
    (
        "sql",
        json.dumps({"code": "' OR 1=1; DROP TABLE tickets_ticket; --", "event": "x' OR '1'='1"}).encode(),
        "application/json",
    ),
    ("script", json.dumps({"code": "<script>alert(1)</script>", "event": "{{7*7}}"}).encode(), "application/json"),
    ("nul-chars", b'{"code": "\\u0000ACDEFGHJ", "event": "\\u0000"}', "application/json"),
    ("lone-surrogate", b'{"code": "\\ud800", "event": "\\udfff"}', "application/json"),
    ("unicode-digits", json.dumps({"code": "١٢٣٤٥٦٧٨", "event": "٣"}).encode(), "application/json"),
    ("invalid-utf8", b'{"code": "\xff\xfe\xfd"}', "application/json"),
    ("utf16", json.dumps({"join": True}).encode("utf-16"), "application/json"),
    ("form-encoded", b"join=true&code=ACDEFGHJ", "application/x-www-form-urlencoded"),
    ("form-huge", b"code=" + OVER_DJANGO_LIMIT, "application/x-www-form-urlencoded"),
    ("form-many-fields", "&".join(f"f{i}=1" for i in range(1500)).encode(), "application/x-www-form-urlencoded"),
    ("multipart-no-boundary", b"--x\r\n\r\n", "multipart/form-data"),
    ("multipart-broken", b"--b\r\nContent-Disposition: form-data\r\n\r\nx", "multipart/form-data; boundary=b"),
    ("text-plain", b'{"join": true}', "text/plain"),
    ("xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>", "text/xml"),
    ("empty", b"", "application/json"),
]

BAD_QUERIES = [
    "until=0001-01-01",
    "since=0001-01-01T00:00:00&until=0001-01-02",
    "until=9999-12-31T23:59:59",
    "since=9999-12-31&until=0001-01-01",
    "since=2026-13-45&until=2026-02-30T25:61:61",
    "since=%00&until=%00",
    "since=%FF%FE&until=%C0%AF",
    "until=" + "9" * 5000,
    "since=' OR 1=1 --&fmt=../../etc/passwd&next=javascript:alert(1)",
    "page=-1&limit=99999999999999999999999&offset=NaN",
    "a[]=1&a[]=2&a[x]=3&" + "&".join(f"p{i}=1" for i in range(1200)),
    "event=%00&code=%00",
    "event=" + quote("١٢٣") + "&code=" + quote("<script>"),
]

# A path parameter's values: a real one (set per test) and junk. A route with a parameter not
# listed here fails the test: add its samples when adding the endpoint.
JUNK_PARAMETERS = ["no-such-thing", "%00", quote("' OR '1'='1"), "x" * 600, quote("١٢٣"), "..%2F..%2Fetc"]


@pytest.fixture
def world(make_event, student, staff):
    """A student holding a ticket for one event and a queue entry for another."""
    from claims.services import claim_submit
    from tools.testing import issue_ticket

    held, queued = make_event(), make_event()
    ticket = issue_ticket(event_id=held.id, user_id=student.id)
    entry, _created = claim_submit(user=student, event_slug=queued.slug)
    staff.is_superuser = True
    staff.save()
    return {
        "slug": queued.slug,
        "queue_id": str(entry.public_id),
        "offer_id": str(entry.public_id),
        "ticket_id": str(ticket.id),
        "kind": "requests",
        "fmt": "csv",
        "uidb64": "MQ",
        "token": "set-password",
    }


def _paths(route: str, world: dict) -> list[str]:
    names = [name for _conv, name in PARAMETER.findall(route)]
    missing = [name for name in names if name not in world]
    assert not missing, f"add sample values for {missing} (route {route!r}) to this test"
    real = PARAMETER.sub(lambda m: world[m.group(2)], route)
    paths = ["/" + real]
    for junk in JUNK_PARAMETERS if names else []:
        # uuid/slug converters refuse junk at the router (a 404); str ones pass it to the view.
        paths.append(
            "/" + PARAMETER.sub(lambda m, junk=junk: junk if m.group(1) in (None, "str") else world[m.group(2)], route)
        )
    return paths


def _client(persona: str, users: dict) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = CSRF_TOKEN
    if persona != "anonymous":
        client.force_login(users[persona])
    return client


@pytest.fixture
def no_limits(settings):
    settings.RATELIMIT_ENABLE = False  # a 429 would hide what the corpus should reach


@pytest.fixture
def server_errors(caplog):
    """ERROR records (the error log, Sentry) logged while the test runs."""
    caplog.set_level(logging.WARNING)
    return lambda: [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in caplog.records
        # A red /healthz is a 503 that Django's request log reports: the health answer, not a crash.
        if r.levelno >= logging.ERROR and not r.getMessage().startswith("Service Unavailable: /healthz")
    ]


def _problem(response, method: str, path: str, what: str, route: str = "") -> str | None:
    label = f"{method} {path[:80]} [{what}] -> {response.status_code}"
    if route == "healthz" and response.status_code == 503 and response.json().get("status") == "red":
        return None  # the health answer itself (no worker runs here), not an error
    if response.status_code >= 500:
        return f"{label}: {response.content[:200]!r}"
    if response.status_code >= 400 and path.startswith("/api/"):
        try:
            body = response.json()
        except ValueError:
            return f"{label}: not JSON {response.content[:120]!r}"
        if not (isinstance(body, dict) and body.get("error") and body.get("code")):
            return f"{label}: no {{error, code}}: {body!r:.200}"
    return None


PERSONAS = ["anonymous", "student", "staff"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_json_endpoint_survives_the_corpus(route, persona, world, student, staff, no_limits, server_errors):
    client = _client(persona, {"student": student, "staff": staff})
    problems = []
    for index, path in enumerate(_paths(route, world)):
        # The whole corpus on the real path; junk path parameters with a sample of it.
        queries, bodies = (BAD_QUERIES, BAD_BODIES) if index == 0 else (BAD_QUERIES[:3], BAD_BODIES[:3])
        for query in queries:
            response = client.get(f"{path}?{query}")
            problems.append(_problem(response, "GET", path, query[:40], route))
        for name, body, content_type in bodies:
            for method in ("POST", "PUT", "PATCH") if name == "not-json" else ("POST",):
                response = client.generic(method, path, body, content_type=content_type, HTTP_X_CSRFTOKEN=CSRF_TOKEN)
                problems.append(_problem(response, method, path, name, route))
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems[:20])
    assert server_errors() == []


# --- the forms ----------------------------------------------------------------------------------

FORMS = {
    "login": ("/accounts/login/", {"username": "1234567890", "password": "x"}),
    "signup": (
        "/accounts/signup/",
        {"full_name": "A", "nim": "1234567890", "email": "a@student.itera.ac.id", "password1": "x", "password2": "x"},
    ),
    "password-reset": ("/accounts/password-reset/", {"email": "a@student.itera.ac.id"}),
    "password-reset-confirm": (
        "/accounts/password-reset/MQ/set-password/",
        {"new_password1": "x", "new_password2": "x"},
    ),
    "verify-resend": ("/accounts/verify/resend/", {"token": "x"}),
    "logout": ("/accounts/logout/", {}),
    "setlang": ("/i18n/setlang/", {"language": "en", "next": "/"}),
    "admin-login": ("/admin/login/", {"username": "admin", "password": "admin"}),
    "ticket-return": ("/tickets/{ticket_id}/return/", {}),
    "tickets-confirm": ("/tickets/{ticket_id}/confirm/", {}),
    "offer": ("/waitlist/{offer_id}/", {}),
    "offer-claim": ("/waitlist/{offer_id}/claim/", {}),
    "waitlist-choice": ("/events/{slug}/waitlist/", {"join": "1", "next": "/"}),
    "claim": ("/events/{slug}/claim/", {}),
}


def _bad_forms(fields: dict) -> list[tuple[str, bytes | dict, str]]:
    def each(value: str) -> dict:
        return {name: value for name in fields} or {"x": value}

    form = "application/x-www-form-urlencoded"
    return [
        ("empty", {}, form),
        ("nul", each("\x00abc\x00"), form),
        ("unicode-digits", each("١٢٣٤٥٦٧٨٩٠"), form),
        ("long", each("x" * 200_000), form),
        ("sql", each("' OR 1=1; --"), form),
        ("script", each("<script>alert(1)</script>"), form),
        ("lists", b"&".join(f"{n}=1&{n}=2".encode() for n in fields or ["x"]), form),
        ("invalid-utf8", b"&".join(f"{n}=".encode() + b"\xff\xfe%FF" for n in fields or ["x"]), form),
        ("huge", b"x=" + OVER_DJANGO_LIMIT, form),
        ("many-fields", "&".join(f"f{i}=1" for i in range(1500)).encode(), form),
        ("json-body", json.dumps(fields).encode(), "application/json"),
        ("multipart-no-boundary", b"--x\r\n\r\n", "multipart/form-data"),
        ("multipart-broken", b"--b\r\nContent-Disposition: form-data\r\n\r\nx", "multipart/form-data; boundary=b"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("form", sorted(FORMS))
def test_form_survives_the_corpus(form, persona, world, student, staff, no_limits, server_errors, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = _client(persona, {"student": student, "staff": staff})
    path, fields = FORMS[form]
    path = path.format(**world)
    problems = []
    for name, body, content_type in _bad_forms(fields):
        if isinstance(body, dict):
            body = "&".join(f"{quote(k)}={quote(v)}" for k, v in body.items()).encode()
        response = client.generic("POST", path, body, content_type=content_type, HTTP_X_CSRFTOKEN=CSRF_TOKEN)
        problems.append(_problem(response, "POST", path, name))
    for query in BAD_QUERIES:
        problems.append(_problem(client.get(f"{path}?{query}"), "GET", path, query[:40]))
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems[:20])
    assert server_errors() == []


def test_every_json_endpoint_is_in_the_corpus():
    """The enumeration itself: a URL conf change that hides the API from it fails here."""
    assert "api/events/<str:slug>/claim/" in JSON_ROUTES
    assert "api/checkin/" in JSON_ROUTES
    assert "api/monitoring/history/" in JSON_ROUTES
    assert len(JSON_ROUTES) >= 14, JSON_ROUTES


@pytest.mark.django_db
def test_bad_bodies_are_answered_in_indonesian_by_default(client, staff):
    client.force_login(staff)
    response = client.post("/api/checkin/", b"[" * 2000, content_type="application/json")  # RecursionError
    assert response.status_code == 400
    assert response.json() == {
        "error": 'Kirim objek JSON seperti {"code": "ABCD-EFGH", "event": "<slug>"}.',
        "code": "bad_json",
    }
    response = client.post("/api/checkin/", b"x" * 3000, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": "Permintaan terlalu besar.", "code": "too_large"}
