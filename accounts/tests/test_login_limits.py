"""Password guessing on /accounts/login/ and /admin/login/ (accounts/limits.py): slow and bounded
for a guesser, while a correct password gets in whatever someone else sent."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.limits import DEVICE_COOKIE
from accounts.models import LoginThrottle
from tools.testing import race_values

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

PASSWORD = "s3cret-pass!"
LOGIN = reverse("accounts:login")
LOCKED_ID = "Terlalu banyak percobaan masuk yang gagal untuk nama ini"
LOCKED_EN = "Too many failed logins for this name"


def post_login(username: str, password: str, client: Client | None = None, url: str = LOGIN):
    client = client or Client()
    return client, client.post(url, {"username": username, "password": password})


def assert_logged_in(client: Client, user) -> None:
    assert int(client.session["_auth_user_id"]) == user.pk


def assert_locked(response, text: str = LOCKED_ID, *, at_most: int = 2) -> int:
    assert response.status_code == 429
    assert text in response.content.decode()
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= at_most
    assert "_auth_user_id" not in response.client.session
    return retry_after


def wait_over(key: str) -> None:
    """The key's wait has passed (as if the student waited for the countdown)."""
    LoginThrottle.objects.filter(key=key).update(locked_until=timezone.now() - timedelta(milliseconds=1))


def log_out(client: Client) -> None:
    """Log out as the page does: the session goes, the device cookie stays."""
    cookie = client.cookies[DEVICE_COOKIE].value
    client.logout()
    client.cookies[DEVICE_COOKIE] = cookie


def known_phone(user) -> Client:
    """A browser the student logged in with before and then logged out of."""
    phone, response = post_login(user.nim, PASSWORD)
    assert response.status_code == 302
    log_out(phone)
    return phone


def refusal(response) -> str:
    """The refusal sentence, with its number of seconds blanked."""
    text = response.context["form"].non_field_errors()[0]
    return re.sub(r"\d+", "N", text)


@pytest.mark.django_db
def test_a_strangers_guesses_earn_a_doubling_wait_then_the_right_password_gets_in(student):
    for _ in range(5):
        _, response = post_login(student.nim, "wrong-guess")
        assert response.status_code == 200
        assert response.context["form"].errors
    # The fifth failure starts a 2-second wait: inside it even the right password is refused,
    # unchecked, with how long to wait (the page counts it down).
    _, response = post_login(student.nim, PASSWORD)
    assert_locked(response, at_most=2)
    assert "2 detik" in response.content.decode()
    # By e-mail: the same account, the same wait.
    assert_locked(post_login(student.email.upper(), PASSWORD)[1], at_most=2)
    wait_over(f"account:{student.pk}")
    assert post_login(student.nim, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(student.nim, PASSWORD)[1], at_most=4)  # doubled
    wait_over(f"account:{student.pk}")
    client, response = post_login(student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, student)
    # The count starts again after a login: five free attempts.
    assert [post_login(student.nim, "wrong-guess")[1].status_code for _ in range(5)] == [200] * 5


@pytest.mark.django_db
def test_the_wait_is_capped_and_the_count_is_forgotten_after_a_quiet_day(student, settings):
    key = f"account:{student.pk}"
    LoginThrottle.objects.create(key=key, user=student, attempts=40, last_attempt_at=timezone.now())
    post_login(student.nim, "wrong-guess")
    assert_locked(post_login(student.nim, PASSWORD)[1], at_most=settings.LOGIN_LOCK_SECONDS)
    assert int(post_login(student.nim, PASSWORD)[1]["Retry-After"]) > settings.LOGIN_LOCK_SECONDS - 5
    yesterday = timezone.now() - timedelta(seconds=settings.LOGIN_FORGET_SECONDS + 1)
    LoginThrottle.objects.filter(key=key).update(last_attempt_at=yesterday, locked_until=yesterday)
    assert post_login(student.nim, PASSWORD)[1].status_code == 302


@pytest.mark.django_db
def test_a_name_no_account_has_reads_the_same_as_a_real_one(student):
    """A rival cannot learn which NIMs exist from the refusals: same status, same sentence,
    after the same number of failures."""
    answers = {}
    for name in (student.nim, "999999999"):
        statuses = [post_login(name, "wrong-guess")[1].status_code for _ in range(5)]
        assert statuses == [200] * 5
        answers[name] = post_login(name, PASSWORD)[1]
        assert_locked(answers[name])
    assert refusal(answers[student.nim]) == refusal(answers["999999999"])
    # The table keeps no typed name: only a keyed hash of it.
    assert not LoginThrottle.objects.filter(key__contains="999999999").exists()


@pytest.mark.django_db
def test_the_phone_used_before_is_not_held_by_a_rivals_guesses(student):
    phone = known_phone(student)
    set_cookie = post_login(student.nim, PASSWORD, client=Client())[1].cookies[DEVICE_COOKIE]
    assert set_cookie["httponly"] and set_cookie["samesite"] == "Lax" and int(set_cookie["max-age"]) > 300 * 86400
    rival = Client()
    statuses = [post_login(student.nim, f"guess-{i}", client=rival)[1].status_code for i in range(10)]
    assert statuses == [200] * 5 + [429] * 5
    # A stranger (a new browser) waits...
    assert_locked(post_login(student.nim, PASSWORD)[1])
    # ...the student's own phone does not.
    _, response = post_login(student.nim, PASSWORD, client=phone)
    assert response.status_code == 302
    assert_logged_in(phone, student)
    # The rival's count is still there: the owner's login did not give them new free attempts.
    assert LoginThrottle.objects.get(key=f"account:{student.pk}").attempts == 5


@pytest.mark.django_db
def test_a_device_cookie_of_another_account_or_forged_is_a_stranger(student, other_student):
    others_phone = known_phone(other_student)
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    assert_locked(post_login(student.nim, PASSWORD, client=others_phone)[1])
    forged = Client()
    forged.cookies[DEVICE_COOKIE] = others_phone.cookies[DEVICE_COOKIE].value.replace(":", ";", 1)
    assert_locked(post_login(student.nim, PASSWORD, client=forged)[1])


@pytest.mark.django_db
def test_a_device_that_fails_too_often_is_a_stranger_again(student):
    phone = known_phone(student)
    assert [post_login(student.nim, "wrong-guess", client=phone)[1].status_code for _ in range(5)] == [200] * 5
    assert not LoginThrottle.objects.filter(key=f"account:{student.pk}").exists()  # counted on the phone only
    # The sixth failure on that cookie counts against the account, as any stranger's.
    assert post_login(student.nim, "wrong-guess", client=phone)[1].status_code == 200
    assert LoginThrottle.objects.get(key=f"account:{student.pk}").attempts == 1
    _, response = post_login(student.nim, PASSWORD, client=phone)
    assert response.status_code == 302
    log_out(phone)
    # A login on the phone makes it trusted again (and, made on the account, ends its count).
    assert [post_login(student.nim, "wrong-guess", client=phone)[1].status_code for _ in range(5)] == [200] * 5
    assert not LoginThrottle.objects.filter(key=f"account:{student.pk}").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["student", "unknown"])
def test_parallel_guesses_get_no_more_tries_than_the_rule(make_user, name):
    """Twenty guesses sent at once on real connections (as from several web processes): five
    are checked, fifteen refused unchecked, for a real account and a name nobody has."""
    nim = make_user().nim if name == "student" else "999999998"

    def guess(i: int) -> int:
        return Client().post(LOGIN, {"username": nim, "password": f"wrong-guess-{i}"}).status_code

    statuses = race_values([partial(guess, i) for i in range(20)])
    assert sorted(statuses) == [200] * 5 + [429] * 15


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_on_a_stolen_device_cookie_get_the_device_and_the_account_tries(make_user):
    student = make_user()
    cookie = known_phone(student).cookies[DEVICE_COOKIE].value

    def guess(i: int) -> int:
        client = Client()
        client.cookies[DEVICE_COOKIE] = cookie
        return client.post(LOGIN, {"username": student.nim, "password": f"wrong-guess-{i}"}).status_code

    statuses = race_values([partial(guess, i) for i in range(20)])
    assert sorted(statuses) == [200] * 10 + [429] * 10  # five on the cookie, five on the account


@pytest.mark.django_db
def test_failed_logins_from_one_address_never_refuse_a_correct_password(student, other_student, settings):
    settings.LOGIN_LIMIT_IP = (6, 900)
    for i in range(10):
        assert post_login(f"99999990{i}", "wrong-guess")[1].status_code == 200
    # The address is far above its limit: everyone at it still logs in.
    client, response = post_login(student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, student)
    # Its failures are slowed instead: no free attempts, the first one already starts the wait.
    assert post_login(other_student.nim, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(other_student.nim, PASSWORD)[1])
    # From another address the same first failure is one of the free five.
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert post_login(student.nim, "wrong-guess", client=elsewhere)[1].status_code == 200
    assert post_login(student.nim, PASSWORD, client=Client(REMOTE_ADDR="10.1.2.3"))[1].status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["staff", "door_staff", "superuser"])
def test_every_role_gets_the_staff_limit(request, make_user, persona):
    if persona == "superuser":
        user = make_user(staff=True)
        user.is_staff, user.is_superuser = False, True
        user.save()
    else:
        user = request.getfixturevalue(persona)
    for _ in range(3):
        assert post_login(user.username, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(user.username, PASSWORD)[1])


@pytest.mark.django_db
def test_staff_are_held_on_the_admin_login_and_unlocked_by_the_command(staff):
    admin_login = reverse("admin:login")
    for _ in range(3):
        _, response = post_login(staff.username, "wrong-guess", url=admin_login)
        assert response.status_code == 200
        assert "_auth_user_id" not in response.client.session
    client, response = post_login(staff.username, PASSWORD, url=admin_login)
    assert LOCKED_ID in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The students' page counts for the same account.
    assert_locked(post_login(staff.username, PASSWORD)[1])
    call_command("unlock_login", staff.username)
    client, response = post_login(staff.username, PASSWORD, url=admin_login)
    assert response.status_code == 302
    assert_logged_in(client, staff)
    # The admin's login leaves a device cookie too.
    assert DEVICE_COOKIE in response.cookies


@pytest.mark.django_db
def test_a_password_reset_ends_the_wait(client, student, mailoutbox):
    LoginThrottle.objects.create(
        key=f"account:{student.pk}", user=student, attempts=14, locked_until=timezone.now() + timedelta(minutes=15)
    )
    assert_locked(post_login(student.nim, PASSWORD)[1], at_most=15 * 60)
    client.post(reverse("accounts:password_reset"), {"email": student.email})
    path = re.search(r"https?://[^/\s]+(/accounts/password-reset/\S+/)", mailoutbox[0].body).group(1)
    page = client.get(path, follow=True)
    new = "Nasi-Goreng-777"
    response = client.post(page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert response.status_code == 302
    assert DEVICE_COOKIE in response.cookies  # the browser that proved the mailbox is known
    client, response = post_login(student.nim, new)  # and any other one gets in too
    assert response.status_code == 302
    assert_logged_in(client, student)


@pytest.mark.django_db
def test_lock_message_in_english(student):
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    client = Client()
    client.cookies["django_language"] = "en"
    _, response = post_login(student.nim, PASSWORD, client=client)
    assert_locked(response, LOCKED_EN)
    assert re.search(r"try again in [12] seconds?", response.content.decode())


@pytest.mark.django_db
def test_login_works_and_accounts_still_wait_while_redis_is_down(redis_server, student, other_student):
    redis_server.kill()
    client, response = post_login(other_student.nim, PASSWORD)
    assert response.status_code == 302
    assert_logged_in(client, other_student)
    for _ in range(5):
        assert post_login(student.nim, "wrong-guess")[1].status_code == 200
    assert_locked(post_login(student.nim, PASSWORD)[1])


@pytest.mark.django_db
def test_the_lockout_list_says_until_when_and_unlocks(student, other_student, make_user, admin_client):
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    # Guessed on for a while: the wait has grown to minutes.
    LoginThrottle.objects.filter(key=f"account:{student.pk}").update(locked_until=timezone.now() + timedelta(minutes=4))
    post_login(other_student.nim, "wrong-guess")
    quiet = make_user()  # a row with nothing counted (an unlocked account)
    LoginThrottle.objects.create(key=f"account:{quiet.pk}", user=quiet, attempts=0)
    changelist = reverse("admin:accounts_loginthrottle_changelist")
    page = admin_client.get(changelist).content.decode()
    rows = {name: row for row in re.findall(r"<tr\b.*?</tr>", page, re.S) for name in re.findall(r">([^<>]+)</a>", row)}
    until = timezone.localtime(LoginThrottle.objects.get(key=f"account:{student.pk}").locked_until)
    assert until.strftime("%H:%M:%S") in rows[student.full_name]  # locked: until when, to the second
    assert "—" in rows[other_student.full_name]  # one failure: not locked
    assert quiet.full_name not in page  # nothing counted: not listed, no "last failed login"
    assert admin_client.get(reverse("admin:accounts_loginthrottle_add")).status_code == 403
    key = f"account:{student.pk}"
    done = admin_client.post(changelist, {"action": "unlock", "_selected_action": [key]}, follow=True)
    assert "1 akun dibuka kembali" in done.content.decode()
    assert post_login(student.nim, PASSWORD)[1].status_code == 302
    assert LoginThrottle.objects.get(key=f"account:{other_student.pk}").attempts == 1  # only the selected one


@pytest.mark.django_db
def test_the_users_unlock_action(student, admin_client):
    for _ in range(5):
        post_login(student.nim, "wrong-guess")
    changelist = reverse("admin:accounts_user_changelist")
    done = admin_client.post(changelist, {"action": "unlock_login", "_selected_action": [student.pk]}, follow=True)
    assert "1 akun dibuka kembali" in done.content.decode()
    assert post_login(student.nim, PASSWORD)[1].status_code == 302


@pytest.mark.django_db
def test_unlock_command_refuses_unknown_names():
    with pytest.raises(CommandError):
        call_command("unlock_login", "nobody-here")
