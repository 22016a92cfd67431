from __future__ import annotations

from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.exceptions import EmailTaken, NimTaken
from tools.testing import race_values

User = get_user_model()
PASSWORD = "Kopi-Susu-2024!"


def signup_data(**overrides):
    data = {
        "full_name": "Siti Aminah",
        "nim": "121140001",
        "email": "siti.121140001@student.itera.ac.id",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data


def csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("accounts:signup"))
    return client, client.cookies["csrftoken"].value


@pytest.mark.django_db
def test_signup_creates_unverified_student_logs_in_and_mails_link(django_capture_on_commit_callbacks, mailoutbox):
    client, token = csrf_client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:signup"), {**signup_data(), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify-sent")
    user = User.objects.get(nim="121140001")
    assert user.username == "121140001"
    assert user.email == "siti.121140001@student.itera.ac.id"
    assert user.full_name == "Siti Aminah"
    assert user.email_verified_at is None
    assert user.check_password(PASSWORD)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["siti.121140001@student.itera.ac.id"]
    assert "/accounts/verify/" in mailoutbox[0].body
    # Logged in, with the banner asking to verify.
    page = client.get(reverse("events:list"))
    assert int(client.session["_auth_user_id"]) == user.pk
    assert "verify-banner" in page.content.decode()


# Sign-up form data with one bad field: ``(overrides of signup_data, the field in error)``.
BAD_INPUT = [
    ({"nim": "12345678"}, "nim"),
    ({"nim": "12345678a"}, "nim"),
    ({"nim": "1234567890"}, "nim"),
    ({"email": "siti@gmail.com"}, "email"),
    ({"email": "siti@student.itera.ac.id.evil.com"}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"password2": "Something-else-99"}, "password2"),
    ({"password1": "12345678", "password2": "12345678"}, "password1"),
    ({"password1": "password", "password2": "password"}, "password1"),
    ({"full_name": "x" * 151}, "full_name"),
    ({"full_name": "   "}, "full_name"),
    ({"email": "a" * 300 + "@student.itera.ac.id"}, "email"),
    ({"password1": "p" * 5000, "password2": "p" * 5000}, "password1"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field"), BAD_INPUT)
def test_signup_rejects_bad_input_with_a_form_error(client, overrides, field):
    response = client.post(reverse("accounts:signup"), signup_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not User.objects.filter(nim=signup_data(**overrides)["nim"]).exists()


@pytest.mark.django_db
def test_signup_refuses_duplicate_nim_and_email_case_insensitively(client, make_user):
    make_user(nim="121140002")
    response = client.post(reverse("accounts:signup"), signup_data(nim="121140002"))
    assert "nim" in response.context["form"].errors
    User.objects.create_user(username="121140003", nim="121140003", email="budi@student.itera.ac.id")
    response = client.post(reverse("accounts:signup"), signup_data(email="BUDI@Student.ITERA.ac.id"))
    assert "email" in response.context["form"].errors
    assert User.objects.filter(email__iexact="budi@student.itera.ac.id").count() == 1


@pytest.mark.django_db
def test_signup_domain_allow_list_comes_from_settings(client, settings):
    settings.STUDENT_EMAIL_DOMAINS = ["students.example.ac.id"]
    response = client.post(reverse("accounts:signup"), signup_data(email="siti@student.itera.ac.id"))
    assert "email" in response.context["form"].errors
    response = client.post(reverse("accounts:signup"), signup_data(email="siti@students.example.ac.id"))
    assert response.status_code == 302


@pytest.mark.django_db
def test_service_maps_constraint_violations_to_domain_errors():
    services.student_sign_up(
        full_name="A", nim="121140010", email="a@student.itera.ac.id", password=PASSWORD, base_url=""
    )
    with pytest.raises(NimTaken):
        services.student_sign_up(
            full_name="B", nim="121140010", email="b@student.itera.ac.id", password=PASSWORD, base_url=""
        )
    with pytest.raises(EmailTaken):
        services.student_sign_up(
            full_name="C", nim="121140011", email="A@Student.itera.ac.id", password=PASSWORD, base_url=""
        )


def race_signups(nim: str, count: int = 8) -> list[int]:
    """``count`` sign-ups for ``nim`` sent at once on real connections; their status codes.

    Each client has its own ``REMOTE_ADDR``, so per-IP sign-up limits never interfere."""
    clients = [Client(REMOTE_ADDR=f"10.0.0.{i + 1}") for i in range(count)]

    def attempt(i: int) -> int:
        data = signup_data(nim=nim, email=f"race{i}@student.itera.ac.id")
        return clients[i].post(reverse("accounts:signup"), data).status_code

    return race_values([partial(attempt, i) for i in range(count)])


@pytest.mark.django_db(transaction=True)
def test_simultaneous_signups_make_one_account_and_a_form_error_not_a_500():
    """Two sign-ups race past the form's existence check; the constraint decides."""
    results = race_signups("121140099")
    assert sorted(results).count(302) == 1
    assert all(code in (200, 302) for code in results)
    assert User.objects.filter(nim="121140099").count() == 1


@pytest.mark.django_db
def test_signup_page_get_and_wrong_method(client, student):
    assert client.get(reverse("accounts:signup")).status_code == 200
    assert client.put(reverse("accounts:signup")).status_code == 405
    client.force_login(student)
    assert client.get(reverse("accounts:signup")).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "texts"),
    [("id", ["Buat akun mahasiswa Anda", "E-mail kampus"]), ("en", ["Create your student account", "Campus e-mail"])],
)
def test_account_pages_in_both_languages(client, language, texts):
    client.cookies["django_language"] = language
    html = client.get(reverse("accounts:signup")).content.decode()
    for text in texts:
        assert text in html
    login_html = client.get(reverse("accounts:login")).content.decode()
    assert ("NIM atau e-mail" if language == "id" else "NIM or e-mail") in login_html
    assert "<script>" not in html
