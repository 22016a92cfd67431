"""Mail leaves through the "smtp" breaker: delivered to a real SMTP server, never a 500 without one.

The ``smtp_server`` and ``guarded_smtp`` fixtures are in the root conftest.py."""

from __future__ import annotations

import time

import pytest
from django.core.mail import send_mail

from common.breaker import get_breaker
from tools.testing import free_port


def test_mail_reaches_a_real_smtp_server(guarded_smtp, smtp_server):
    guarded_smtp.EMAIL_PORT = smtp_server.port
    sent = send_mail("Tiket Anda", "Kode: ABCD-EFGH", None, ["a@student.itera.ac.id"])
    assert sent == 1
    assert len(smtp_server.received) == 1
    assert b"Kode: ABCD-EFGH" in smtp_server.received[0]
    assert get_breaker("smtp").state == "closed"


def test_dead_smtp_server_never_raises_and_opens_the_breaker(guarded_smtp):
    guarded_smtp.EMAIL_PORT = free_port()
    breaker = get_breaker("smtp")
    for _ in range(breaker.failure_threshold):
        assert send_mail("s", "b", None, ["a@student.itera.ac.id"]) == 0
    assert breaker.state == "open"
    started = time.perf_counter()
    assert send_mail("s", "b", None, ["a@student.itera.ac.id"]) == 0
    assert time.perf_counter() - started < 0.05, "an open breaker must not touch the network"


@pytest.mark.django_db
def test_sign_up_with_smtp_down_still_succeeds(guarded_smtp, client):
    from django.contrib.auth import get_user_model

    guarded_smtp.EMAIL_PORT = free_port()
    response = client.post(
        "/accounts/signup/",
        {
            "full_name": "Budi Mahasiswa",
            "nim": "121140777",
            "email": "budi@student.itera.ac.id",
            "password1": "Lautan-biru-2026",
            "password2": "Lautan-biru-2026",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(nim="121140777", email_verified_at__isnull=True).exists()
