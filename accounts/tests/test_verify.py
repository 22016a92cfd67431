from __future__ import annotations

import re

import pytest
from django.core import signing
from django.urls import reverse

from accounts import services


def link_path(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/verify/[^\s]+/)", body)
    assert match, body
    return match.group(1)


@pytest.fixture
def unverified(make_user):
    return make_user(verified=False)


@pytest.mark.django_db
def test_link_from_mail_verifies(client, unverified, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        services.verification_email_schedule(user_id=unverified.pk, base_url="http://testserver")
    path = link_path(mailoutbox[0].body)
    response = client.get(path)
    assert response.status_code == 302
    unverified.refresh_from_db()
    assert unverified.email_verified_at is not None
    first = unverified.email_verified_at
    # A second click is harmless and keeps the first timestamp.
    assert client.get(path).status_code == 302
    unverified.refresh_from_db()
    assert unverified.email_verified_at == first


@pytest.mark.django_db
def test_expired_link_shows_resend_page(client, unverified, settings, monkeypatch):
    token = services.verification_token_make(user=unverified)
    settings.EMAIL_VERIFICATION_MAX_AGE = 60
    real_time = signing.time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + 120)
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 410
    html = response.content.decode()
    assert reverse("accounts:verify-resend") in html
    assert f'value="{token}"' in html
    unverified.refresh_from_db()
    assert unverified.email_verified_at is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-2] + "xx", lambda t: "x" + t, lambda t: "garbage", lambda t: "a" * 600]
)
def test_tampered_link_is_refused_clearly(client, unverified, mangle):
    token = mangle(services.verification_token_make(user=unverified))
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 400
    assert reverse("accounts:verify-resend") in response.content.decode()
    unverified.refresh_from_db()
    assert unverified.email_verified_at is None


@pytest.mark.django_db
def test_link_for_an_old_address_stops_working(client, unverified):
    token = services.verification_token_make(user=unverified)
    unverified.email = "changed@student.itera.ac.id"
    unverified.save()
    assert client.get(reverse("accounts:verify", args=[token])).status_code == 400


@pytest.mark.django_db
def test_token_signed_for_something_else_is_refused(client, unverified):
    token = signing.TimestampSigner(salt="other").sign_object({"u": unverified.pk, "e": unverified.email})
    assert client.get(reverse("accounts:verify", args=[token])).status_code == 400


@pytest.mark.django_db
def test_resend_is_rate_limited_per_user(client, unverified, django_capture_on_commit_callbacks, mailoutbox):
    client.force_login(unverified)
    url = reverse("accounts:verify-resend")
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 429
    assert len(mailoutbox) == 3
    assert client.get(url).status_code == 405


@pytest.mark.django_db
def test_resend_from_expired_link_without_login(client, unverified, django_capture_on_commit_callbacks, mailoutbox):
    token = services.verification_token_make(user=unverified)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:verify-resend"), {"token": token})
    assert response.status_code == 302
    assert mailoutbox[0].to == [unverified.email]


@pytest.mark.django_db
def test_resend_anonymous_without_token_goes_to_login(client, mailoutbox):
    response = client.post(reverse("accounts:verify-resend"), {"token": "forged"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert mailoutbox == []


@pytest.mark.django_db
def test_verified_user_is_not_mailed_again(client, student, django_capture_on_commit_callbacks, mailoutbox):
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:verify-resend"))
    assert mailoutbox == []
