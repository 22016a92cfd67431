"""Links in the account mails point at SITE_URL, whatever Host header the request carried: a
client chooses that header, and a rival's host in a reset mail would collect the token."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.test_signup import signup_data

SITE = "https://tickets.example.ac.id"
RIVAL = "rival.example"


@pytest.fixture
def site(settings):
    settings.SITE_URL = SITE
    # A host the site answers too (a second name, a wildcard): Django's host check lets it through.
    settings.ALLOWED_HOSTS = ["tickets.example.ac.id", RIVAL]


def links(mail) -> list[str]:
    return re.findall(r"https?://\S+", mail.body)


@pytest.mark.django_db
def test_the_reset_link_points_at_site_url(site, student, mailoutbox):
    response = Client().post(reverse("accounts:password_reset"), {"email": student.email}, HTTP_HOST=RIVAL)
    assert response.status_code == 302
    [mail] = mailoutbox
    assert links(mail) and all(link.startswith(f"{SITE}/accounts/password-reset/") for link in links(mail))


@pytest.mark.django_db
def test_the_verification_links_point_at_site_url(site, mailoutbox, django_capture_on_commit_callbacks):
    client = Client(HTTP_HOST=RIVAL)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("accounts:signup"), signup_data()).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("accounts:verify-resend")).status_code == 302
    assert len(mailoutbox) == 2
    for mail in mailoutbox:
        assert links(mail) and all(link.startswith(f"{SITE}/accounts/verify/") for link in links(mail))
