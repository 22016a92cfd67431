"""The verification link opened in another browser (logged out) leads to the login page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts import services


def verification_path(mailoutbox) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/verify/[^\s]+/)", mailoutbox[-1].body).group(1)


@pytest.fixture
def link(make_user, django_capture_on_commit_callbacks, mailoutbox):
    user = make_user(verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.verification_email_schedule(user_id=user.pk, base_url="http://testserver")
    return user, verification_path(mailoutbox)


@pytest.mark.django_db
def test_logged_out_the_link_verifies_and_asks_to_log_in(link):
    user, path = link
    browser = Client()
    response = browser.get(path, follow=True)
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    html = response.content.decode()
    assert "Alamat e-mail Anda sudah terverifikasi. Silakan masuk untuk mengklaim tiket." in html
    assert "Sekarang Anda dapat mengklaim tiket" not in html


@pytest.mark.django_db
def test_logged_in_as_that_student_the_link_says_claiming_is_possible(link):
    user, path = link
    browser = Client()
    browser.force_login(user)
    response = browser.get(path, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "Sekarang Anda dapat mengklaim tiket" in response.content.decode()


@pytest.mark.django_db
def test_logged_in_as_someone_else_the_link_asks_to_log_in(link, make_user):
    _user, path = link
    browser = Client()
    browser.force_login(make_user())
    response = browser.get(path)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
