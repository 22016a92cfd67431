"""A thousand students behind the campus NAT's one address, and a rival among them who knows how
NIMs are made: the rival's guesses keep nobody out (accounts/limits.py)."""

from __future__ import annotations

import random

import pytest
from django.test import Client

from accounts.models import LoginThrottle
from accounts.tests.test_login_limits import LOGIN, PASSWORD, assert_locked, known_phone
from tools.testing import bulk_students

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.usefixtures("fast_password_hasher")]


def campus_post(username: str, password: str, client: Client | None = None):
    """From the campus address (every client here is 127.0.0.1, as behind the NAT)."""
    client = client or Client()
    return client, client.post(LOGIN, {"username": username, "password": password})


def test_320_failures_from_the_campus_address_keep_no_student_out(settings):
    students = bulk_students(1000)
    victim = students[0]
    phone = known_phone(victim)  # the phone the victim logged in with last week
    prefix = victim.nim[:4]
    rng = random.Random(22)

    # Two minutes before the opening, a rival sends 320 failed logins with random NIMs of the
    # cohort's range (sequential NIMs: a few of them are real students').
    guessed = [f"{prefix}{rng.randrange(10**5):05d}" for _ in range(320)]
    statuses = [campus_post(nim, "Tebak-Tebakan-1")[1].status_code for nim in guessed]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) >= 300  # checked (and wrong); a repeated name may have to wait
    address_failures = LoginThrottle.objects.filter(key__startswith="ip:127.0.0.1:").values_list("attempts", flat=True)
    assert sum(address_failures) >= settings.LOGIN_LIMIT_IP[0]  # the campus address is above its limit

    # Fifty students log in from new browsers on the campus network: every one gets in.
    others = [s for s in students[1:] if s.nim not in set(guessed)]
    for student in rng.sample(others, 50):
        client, response = campus_post(student.nim, PASSWORD)
        assert response.status_code == 302, student.nim
        assert int(client.session["_auth_user_id"]) == student.pk

    # A student whose NIM the rival happened to guess is held a moment at most, even on a new browser.
    for student in [s for s in students if s.nim in set(guessed)][:5]:
        _, response = campus_post(student.nim, PASSWORD)
        if response.status_code == 429:
            assert_locked(response, at_most=2)

    # The rival's ten wrong passwords for the victim: checked once, then refused unchecked.
    rival = Client()
    statuses = [campus_post(victim.nim, f"Tebak-{i}", client=rival)[1].status_code for i in range(10)]
    assert statuses[0] == 200 and set(statuses[1:]) <= {200, 429} and statuses.count(200) <= 2
    # The victim, on the phone used before, is in at once.
    _, response = campus_post(victim.nim, PASSWORD, client=phone)
    assert response.status_code == 302
    assert int(phone.session["_auth_user_id"]) == victim.pk
