from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

PASSWORD = "s3cret-pass!"


def login(username: str, password: str, next_url: str = ""):
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("accounts:login"))
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    data = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    if next_url:
        data["next"] = next_url
    return client, client.post(reverse("accounts:login"), data)


@pytest.mark.django_db
def test_login_by_nim(student):
    client, response = login(student.nim, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("events:list")
    assert int(client.session["_auth_user_id"]) == student.pk


@pytest.mark.django_db
def test_login_by_email_any_case_and_next(student):
    _client, response = login(student.email.upper(), PASSWORD, next_url="/events/x/")
    assert response.status_code == 302
    assert response["Location"] == "/events/x/"


@pytest.mark.django_db
def test_login_refuses_offsite_next(student):
    _, response = login(student.nim, PASSWORD, next_url="https://evil.example/")
    assert response["Location"] == reverse("events:list")


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["wrong-password", "000000000", "nobody@student.itera.ac.id", "x" * 500])
def test_wrong_credentials_show_form_error(student, username):
    who = student.nim if username == "wrong-password" else username
    client, response = login(who, "not-the-password")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert response.context["form"].errors


@pytest.mark.django_db
def test_login_without_csrf_is_refused(student):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:login"), {"username": student.nim, "password": PASSWORD})
    assert response.status_code == 403


@pytest.mark.django_db
def test_unverified_student_can_log_in(make_user):
    user = make_user(verified=False)
    client, response = login(user.nim, PASSWORD)
    assert response.status_code == 302
    assert "verify-banner" in client.get(reverse("events:list")).content.decode()


@pytest.mark.django_db
def test_logout_is_post_only(client, student):
    client.force_login(student)
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_password_reset_by_email(client, student, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": student.email.upper()})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    path = re.search(r"https?://[^/\s]+(/accounts/password-reset/\S+/)", body).group(1)
    page = client.get(path, follow=True)
    assert page.status_code == 200
    assert page.context["validlink"]
    new = "Nasi-Goreng-777"
    response = client.post(page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert response.status_code == 302
    student.refresh_from_db()
    assert student.check_password(new)


@pytest.mark.django_db
def test_password_reset_unknown_address_sends_nothing(client, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": "ghost@student.itera.ac.id"})
    assert response.status_code == 302
    assert mailoutbox == []


@pytest.mark.django_db
def test_user_admin_search_by_nim(client, make_user, student):
    admin_user = make_user(staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.get("/admin/accounts/user/", {"q": student.nim})
    assert response.status_code == 200
    assert student.email in response.content.decode()


@pytest.mark.django_db
def test_password_reset_mails_are_rate_limited_per_address(client, student, mailoutbox):
    for _ in range(5):
        response = client.post(reverse("accounts:password_reset"), {"email": student.email})
        assert response.status_code == 302
    assert len(mailoutbox) == 3
