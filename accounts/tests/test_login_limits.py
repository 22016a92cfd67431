"""Password guessing: per-account and per-IP limits on /accounts/login/ and /admin/login/."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import LoginThrottle
from tools.testing import race_values

PASSWORD = "s3cret-pass!"
LOGIN = reverse("accounts:login")
LOCKED_ID = "Terlalu banyak percobaan masuk yang gagal untuk akun ini"
LOCKED_EN = "Too many failed logins for this account"
NETWORK_ID = "Terlalu banyak percobaan masuk yang gagal dari jaringan Anda"


def post_login(username: str, password: str, client: Client | None = None, url: str = LOGIN):
    client = client or Client()
    return client, client.post(url, {"username": username, "password": password})


def assert_logged_in(client: Client, user) -> None:
    assert int(client.session["_auth_user_id"]) == user.pk


def assert_locked(response, text: str = LOCKED_ID) -> None:
    assert response.status_code == 429
    assert text in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in response.client.session


@pytest.mark.django_db
def test_guessing_a_students_password_locks_the_account_not_the_campus(student, other_student, admin_client):
    for _ in range(5):
        _, response = post_login(student.nim, "wrong-guess")
        assert response.status_code == 200
        assert response.context["form"].errors
    # The right password is refused too until the lock ends, with how long to wait.
    _, response = post_login(student.nim, PASSWORD)
    assert_locked(response)
    assert "15 menit" in response.content.decode()
    # By e-mail: the same account, the same lock.
    _, response = post_login(student.email.upper(), PASSWORD)
    assert_locked(response)
    # Another student behind the same address (the campus NAT) logs in as usual.
    client, response = post_login(other_student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, other_student)
    # An admin unlocks the account; the student is in at once.
    changelist = reverse("admin:accounts_user_changelist")
    done = admin_client.post(changelist, {"action": "unlock_login", "_selected_action": [student.pk]}, follow=True)
    assert "1 akun dibuka kembali" in done.content.decode()
    client, response = post_login(student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, student)


@pytest.mark.django_db
def test_staff_are_locked_after_three_guesses_on_the_admin_login(staff):
    admin_login = reverse("admin:login")
    for _ in range(3):
        _, response = post_login(staff.username, "wrong-guess", url=admin_login)
        assert response.status_code == 200
        assert "_auth_user_id" not in response.client.session
    client, response = post_login(staff.username, PASSWORD, url=admin_login)
    assert LOCKED_ID in response.content.decode()
    assert "15 menit" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The students' page counts for the same account.
    _, response = post_login(staff.username, PASSWORD)
    assert_locked(response)
    call_command("unlock_login", staff.username)
    client, response = post_login(staff.username, PASSWORD, url=admin_login)
    assert response.status_code == 302
    assert_logged_in(client, staff)


@pytest.mark.django_db
def test_the_lock_ends_by_itself_and_a_login_resets_the_count(student):
    for _ in range(4):
        post_login(student.nim, "wrong-guess")
    _, response = post_login(student.nim, PASSWORD)
    assert response.status_code == 302  # the fifth attempt, right: the count starts again
    for _ in range(4):
        assert post_login(student.nim, "wrong-guess")[1].status_code == 200
    assert post_login(student.nim, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(student.nim, PASSWORD)[1])
    # Fifteen minutes later (the lock runs from the last counted attempt):
    LoginThrottle.objects.filter(user=student).update(
        last_failure_at=LoginThrottle.objects.get(user=student).last_failure_at - timedelta(minutes=15)
    )
    _, response = post_login(student.nim, PASSWORD)
    assert response.status_code == 302


@pytest.mark.django_db
def test_lock_message_in_english(student):
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    client = Client()
    client.cookies["django_language"] = "en"
    _, response = post_login(student.nim, PASSWORD, client=client)
    assert_locked(response, LOCKED_EN)
    assert "15 minutes" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_get_no_more_tries_than_the_limit(student):
    """Twenty guesses sent at once on real connections: five are checked, fifteen refused."""

    def guess(i: int) -> int:
        return Client().post(LOGIN, {"username": student.nim, "password": f"wrong-guess-{i}"}).status_code

    statuses = race_values([partial(guess, i) for i in range(20)])
    assert sorted(statuses) == [200] * 5 + [429] * 15


@pytest.mark.django_db
def test_per_ip_limit_counts_failures_of_any_name(student, settings):
    settings.LOGIN_LIMIT_IP = "6/15m"
    for i in range(6):
        assert post_login(f"12345678{i}", "wrong-guess")[1].status_code == 200
    _, response = post_login(student.nim, PASSWORD)
    assert_locked(response, NETWORK_ID)
    # Another address is not affected.
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert post_login(student.nim, PASSWORD, client=elsewhere)[1].status_code == 302
    call_command("unlock_login", ip="127.0.0.1")
    assert post_login(student.nim, PASSWORD)[1].status_code == 302


@pytest.mark.django_db
def test_successful_logins_do_not_count_against_the_ip(make_user, settings):
    settings.LOGIN_LIMIT_IP = "3/15m"
    for _ in range(5):
        user = make_user()
        assert post_login(user.nim, PASSWORD)[1].status_code == 302


@pytest.mark.django_db
def test_login_works_and_accounts_still_lock_while_redis_is_down(redis_server, student, other_student):
    redis_server.kill()
    client, response = post_login(other_student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, other_student)
    for _ in range(5):
        assert post_login(student.nim, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(student.nim, PASSWORD)[1])


@pytest.mark.django_db
def test_login_locks_page_lists_and_unlocks(student, other_student, admin_client):
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    post_login(other_student.nim, "wrong-guess")
    changelist = reverse("admin:accounts_loginthrottle_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert student.full_name in page.content.decode()
    assert admin_client.get(reverse("admin:accounts_loginthrottle_add")).status_code == 403
    done = admin_client.post(changelist, {"action": "unlock", "_selected_action": [student.pk]}, follow=True)
    assert "1 akun dibuka kembali" in done.content.decode()
    assert post_login(student.nim, PASSWORD)[1].status_code == 302
    assert LoginThrottle.objects.get(user=other_student).failures == 1  # only the selected one


@pytest.mark.django_db
def test_unlock_command_refuses_unknown_names_and_bad_addresses():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("unlock_login", "nobody-here")
    with pytest.raises(CommandError):
        call_command("unlock_login", ip="not-an-ip")
    with pytest.raises(CommandError):
        call_command("unlock_login")


@pytest.mark.django_db
def test_a_superuser_without_staff_flag_gets_the_staff_limit(make_user):
    user = make_user(staff=True)
    user.is_staff, user.is_superuser = False, True
    user.save()
    for _ in range(3):
        assert post_login(user.username, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(user.username, PASSWORD)[1])
